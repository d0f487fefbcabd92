//go:build linux

package ingest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/linuxdiag/aod/bpf"
)

// fakeAttacher reports attaches and detaches on calls, in order; each attach returns
// the next error of results.
type fakeAttacher struct {
	calls   chan string
	results chan error
}

func (f *fakeAttacher) Attach() ([]bpf.TracepointStatus, error) {
	f.calls <- "attach"
	err := <-f.results
	return []bpf.TracepointStatus{{Name: "rpc_stats_latency", Attached: err == nil}}, err
}

func (f *fakeAttacher) Detach() { f.calls <- "detach" }

func expectCalls(t *testing.T, calls chan string, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-calls:
			if got != w {
				t.Fatalf("call %q, want %q", got, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s call", w)
		}
	}
}

// TestAttachNFSFollowsModules: the programs are attached once sunrpc loads, and
// attached again (detached first, if attached) when nfs and then nfsv4 load, whose
// status tracepoints were missing before; then the modules are no longer polled.
func TestAttachNFSFollowsModules(t *testing.T) {
	dir := t.TempDir()
	old := sysModule
	sysModule = dir
	t.Cleanup(func() { sysModule = old })
	r, err := New(Settings{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Probes: ProbeConfig{Options: bpf.Options{ModulePollInterval: time.Millisecond}}}, Consumers{})
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeAttacher{calls: make(chan string), results: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.attachNFS(ctx, fake)
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })

	load := func(module string) {
		if err := os.Mkdir(filepath.Join(dir, module), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	load("sunrpc")
	fake.results <- errors.New("rpc_stats_latency: no such tracepoint")
	expectCalls(t, fake.calls, "attach")
	load("nfs")
	expectCalls(t, fake.calls, "attach") // the failed attach left nothing to detach
	// The next attach waits for its result: the hooks are the failed attach's.
	wantHooks(t, r, bpf.HookStatus{Protocol: "nfs", Hook: "rpc_stats_latency", Reason: "not attached"})
	fake.results <- nil
	load("nfsv4")
	expectCalls(t, fake.calls, "detach")
	wantHooks(t, r, bpf.HookStatus{Protocol: "nfs", Hook: "rpc_stats_latency", Attached: true})
	fake.results <- nil
	expectCalls(t, fake.calls, "attach")
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("still polling the modules with all three loaded and the programs attached")
	}
}

func wantHooks(t *testing.T, r *Receiver, want ...bpf.HookStatus) {
	t.Helper()
	if got := r.Hooks(); !slices.Equal(got, want) {
		t.Errorf("hooks %+v, want %+v", got, want)
	}
}
