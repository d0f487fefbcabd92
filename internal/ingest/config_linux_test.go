//go:build linux

package ingest

import (
	"strings"
	"testing"
	"time"

	"github.com/linuxdiag/aod/internal/ringreader"
)

func TestNewRejectsASlowFlush(t *testing.T) {
	_, err := New(Settings{Config: Config{Reader: ringreader.Config{FlushInterval: 300 * time.Millisecond}}}, Consumers{})
	if err == nil || !strings.Contains(err.Error(), "within 200ms") {
		t.Fatalf("err = %v", err)
	}
	r, err := New(Settings{}, Consumers{})
	if err != nil {
		t.Fatal(err)
	}
	if r.cfg.CollectionInterval != DefaultCollectionInterval || !r.cfg.Exponential || r.cfg.Explicit || r.cfg.ProcDir != DefaultProcDir || r.cfg.MountStats != DefaultMountStats {
		t.Fatalf("defaults %+v", r.cfg)
	}
	if r.Kernel() != nil {
		t.Fatal("a kernel before Start")
	}
}
