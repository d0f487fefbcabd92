package agent

import (
	"slices"
	"testing"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/configs"
	"github.com/linuxdiag/aod/internal/config"
	fileio "github.com/linuxdiag/aod/internal/io"
)

// TestIOKernelFilters: the default file's io rules become exactly their (operation,
// errno) pairs, a rule without operations tracks its errnos on every operation, and
// the probe is loaded only when an io anomaly is configured.
func TestIOKernelFilters(t *testing.T) {
	cfg, _, err := config.Parse(configs.DefaultName, configs.Default)
	if err != nil {
		t.Fatal(err)
	}
	f := IOKernelFilters(cfg)
	has := func(op int, e int32) bool { return slices.Contains(f.Pairs, bpf.IOPair{Op: op, Errno: e}) }
	for _, e := range []int32{5, 6, 19, 28, 30, 122, 116} { // severe: every operation
		if !has(-1, e) {
			t.Errorf("severe's errno %d is not tracked on every operation", e)
		}
	}
	for _, op := range []uint16{fileio.Open, fileio.Stat, fileio.Readlink} {
		if !has(int(op), 2) {
			t.Errorf("path-miss-burst: %s ENOENT not tracked", fileio.Command(op))
		}
	}
	if has(int(fileio.Unlink), 2) || has(-1, 2) {
		t.Error("ENOENT tracked beyond OPEN, STAT and READLINK")
	}
	if !has(int(fileio.LockFcntl), 11) || !has(int(fileio.LockFcntl), 13) || !has(int(fileio.Mkdir), 17) {
		t.Error("lock-contention-burst or create-collision-burst pairs missing")
	}
	if want := 7 + 3 + 4 + 2; len(f.Pairs) != want || f.All {
		t.Errorf("%d pairs (all %v), want %d", len(f.Pairs), f.All, want)
	}
	if fs := ioFileSystems(cfg); !slices.Equal(fs, config.DefaultIOFileSystems) {
		t.Errorf("scope %v", fs)
	}
	cfg.Anomalies.IO.Error = nil
	if fs := ioFileSystems(cfg); fs != nil {
		t.Errorf("without an io anomaly the probe is scoped to %v, want not loaded", fs)
	}
}
