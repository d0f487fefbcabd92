//go:build linux

package bpf

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/bpf/internal/testprog"
)

// syncBuffer collects log output written from the attaching goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond until it holds, failing the test after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling interval, not synchronisation
	}
}

func readRuns(t *testing.T, m *ebpf.Map) uint64 {
	t.Helper()
	var n uint64
	if err := m.Lookup(uint32(0), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// syscalls makes system calls, each of which fires the sys_enter tracepoint.
func syscalls() {
	for range 100 {
		unix.Getppid()
	}
}

func TestAttachWaitsForCifsThenAttachesAndCloseDetaches(t *testing.T) {
	var logs syncBuffer
	p := loadProbes(t, Options{
		Logger:             slog.New(slog.NewTextHandler(&logs, nil)),
		ModulePollInterval: 5 * time.Millisecond,
	})
	tp := testprog.Loaded(t, nil)
	moduleDir := filepath.Join(t.TempDir(), "cifs")
	// Stand-ins for the cifs tracepoints: one that exists everywhere (sys_enter:
	// struct pt_regs *regs, long id) and one that exists nowhere.
	tps := []tracepoint{
		{"sys_enter", tp.Count, []protoArg{argPtr, argU64}, true, false},
		{"aod_no_such_tracepoint", tp.Count, nil, false, false},
	}
	type result struct {
		r   AttachReport
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := p.attach(context.Background(), moduleDir, tps, btf.LoadKernelSpec)
		done <- result{r, err}
	}()

	waitFor(t, "the wait for cifs to be logged", func() bool {
		return strings.Contains(logs.String(), "cifs kernel module not loaded")
	})
	select {
	case res := <-done:
		t.Fatalf("attach returned before the module appeared: %+v", res)
	default:
	}
	if err := os.Mkdir(moduleDir, 0o755); err != nil { // "modprobe cifs"
		t.Fatal(err)
	}
	var res result
	select {
	case res = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("attach did not notice the module")
	}
	if res.err != nil {
		t.Fatal(res.err)
	}
	if n := strings.Count(logs.String(), "cifs kernel module not loaded"); n != 1 {
		t.Errorf("the wait was logged %d times, want once", n)
	}
	r := res.r.Tracepoints
	if len(r) != 2 || !r[0].Attached || !r[0].Verified || r[0].Err != nil {
		t.Fatalf("report %+v: sys_enter not attached and verified", r)
	}
	if r[1].Attached || !errors.Is(r[1].Err, unix.ENOENT) || !strings.Contains(r[1].Err.Error(), "not in this kernel") {
		t.Errorf("report %+v: missing tracepoint not reported as such", r[1])
	}
	if got := res.r.Attached(); len(got) != 1 || got[0] != "sys_enter" {
		t.Errorf("Attached() = %v", got)
	}
	if !strings.Contains(logs.String(), "aod_no_such_tracepoint") {
		t.Errorf("missing tracepoint not logged:\n%s", logs.String())
	}
	if _, err := p.attach(context.Background(), moduleDir, tps, btf.LoadKernelSpec); err == nil {
		t.Error("a second attach succeeded")
	}

	waitFor(t, "the attached program to run", func() bool {
		syscalls()
		return readRuns(t, tp.Runs) > 0
	})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// Attached, every one of our system calls would count; detached, none does.
	// Runs already under way when Close returned may still land, hence the polling.
	waitFor(t, "runs to stop after Close", func() bool {
		before := readRuns(t, tp.Runs)
		syscalls()
		return readRuns(t, tp.Runs) == before
	})
	if _, err := p.attach(context.Background(), moduleDir, tps, btf.LoadKernelSpec); err == nil {
		t.Error("attach after Close succeeded")
	}
}

func TestAttachStopsWaitingWhenCancelled(t *testing.T) {
	var logs syncBuffer
	p := loadProbes(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), ModulePollInterval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := p.attach(ctx, filepath.Join(t.TempDir(), "cifs"), p.tracepoints(), loadCifsBTF)
		done <- err
	}()
	waitFor(t, "the wait to start", func() bool { return strings.Contains(logs.String(), "not loaded") })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("attach returned %v, want context.Canceled", err)
	}
}

func TestCloseDoesNotWaitForAWaitingAttach(t *testing.T) {
	var logs syncBuffer
	p := loadProbes(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), ModulePollInterval: time.Millisecond})
	moduleDir := filepath.Join(t.TempDir(), "cifs")
	done := make(chan error, 1)
	go func() {
		_, err := p.attach(context.Background(), moduleDir, p.tracepoints(), loadCifsBTF)
		done <- err
	}()
	waitFor(t, "the wait to start", func() bool { return strings.Contains(logs.String(), "not loaded") })
	if err := p.Close(); err != nil { // must not block on the waiting Attach
		t.Fatal(err)
	}
	if err := os.Mkdir(moduleDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, errClosed) {
		t.Errorf("attach after Close: %v, want errClosed", err)
	}
}

func TestAttachReportsMissingCifsTracepoints(t *testing.T) {
	if _, err := os.Stat(cifsModuleDir); err == nil {
		t.Skip("cifs is loaded here: its tracepoints exist (the end-to-end tests attach them)")
	}
	var logs syncBuffer
	p := loadProbes(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	// Pretend the module is loaded: the real tracepoint table finds none of them.
	r, err := p.attach(context.Background(), t.TempDir(), p.tracepoints(), loadCifsBTF)
	if !errors.Is(err, ErrRequiredTracepoints) {
		t.Fatalf("attach: %v, want ErrRequiredTracepoints", err)
	}
	want := []string{"smb3_cmd_enter", "smb3_cmd_done", "smb3_cmd_err", "smb3_reconnect", "smb3_connect_done", "smb3_connect_err"}
	if len(r.Tracepoints) != len(want) {
		t.Fatalf("report %+v", r)
	}
	for i, tp := range r.Tracepoints {
		if tp.Name != want[i] || tp.Attached || !errors.Is(tp.Err, unix.ENOENT) || tp.Required != (i < 2) {
			t.Errorf("report entry %+v", tp)
		}
	}
	for _, name := range want {
		if !strings.Contains(logs.String(), name) {
			t.Errorf("%s missing from the log:\n%s", name, logs.String())
		}
	}
}

func TestRequiredTracepointMissingDetachesAll(t *testing.T) {
	p := loadProbes(t, Options{Logger: slog.New(slog.DiscardHandler)})
	tp := testprog.Loaded(t, nil)
	r, err := p.attach(context.Background(), t.TempDir(), []tracepoint{
		{"sys_enter", tp.Count, []protoArg{argPtr, argU64}, false, false},
		{"aod_no_such_tracepoint", tp.Count, nil, true, false},
	}, btf.LoadKernelSpec)
	if !errors.Is(err, ErrRequiredTracepoints) || !strings.Contains(err.Error(), "aod_no_such_tracepoint") {
		t.Fatalf("attach: %v", err)
	}
	if r.Tracepoints[0].Attached || !errors.Is(r.Tracepoints[0].Err, errDetached) {
		t.Errorf("optional tracepoint %+v still reported attached", r.Tracepoints[0])
	}
	waitFor(t, "runs to stop", func() bool {
		before := readRuns(t, tp.Runs)
		syscalls()
		return readRuns(t, tp.Runs) == before
	})
}

func TestCheckProtoAgainstKernelBTF(t *testing.T) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	// TP_PROTO(bool preempt, struct task_struct *prev, struct task_struct *next,
	// unsigned int prev_state)
	ok, err := checkProto(spec, "sched_switch", []protoArg{{size: 1}, argPtr, argPtr, argU32})
	if !ok || err != nil {
		t.Fatalf("sched_switch: verified %v, %v", ok, err)
	}
	ok, err = checkProto(spec, "sched_switch", []protoArg{argU64, argU64, argPtr})
	if !ok || err == nil || !strings.Contains(err.Error(), "(int8, ptr, ptr, int32)") {
		t.Errorf("wrong prototype: verified %v, %v", ok, err)
	}
	if ok, err := checkProto(spec, "aod_no_such_tracepoint", nil); ok || err != nil {
		t.Errorf("unknown tracepoint: verified %v, %v; want unverified", ok, err)
	}
}
