//go:build linux

package bpf

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/bpf/internal/testprog"
	"github.com/linuxdiag/aod/internal/smb"
	"github.com/linuxdiag/aod/internal/smbevent"
)

// requireBPF skips tests that need to load BPF programs where that is impossible.
func requireBPF(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("loading BPF programs needs root (CI runs the BPF tests as root)")
	}
}

// loadProbes loads the production probes, skipping only when BPF is not permitted.
func loadProbes(tb testing.TB, opts Options) *Probes {
	tb.Helper()
	requireBPF(tb)
	p, err := Load(opts)
	if errors.Is(err, unix.EPERM) {
		tb.Skipf("BPF not permitted here: %v", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Error(err)
		}
	})
	return p
}

// harness drives the real programs with BPF_PROG_TEST_RUN, as the cifs tracepoints
// would, from one locked OS thread so that the "current task" is known.
type harness struct {
	t   *testing.T
	p   *Probes
	rd  *ringbuf.Reader
	rec ringbuf.Record
	tid uint32
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	p := loadProbes(t, opts)
	rd, err := p.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	return &harness{t: t, p: p, rd: rd, tid: uint32(unix.Gettid())}
}

func (h *harness) run(prog *ebpf.Program, args ...uint64) {
	h.t.Helper()
	if _, err := prog.Run(&ebpf.RunOptions{Context: args}); err != nil {
		h.t.Fatalf("run %v: %v", prog, err)
	}
}

func (h *harness) enter(tid uint32, ses uint64, cmd uint16, mid uint64) {
	h.t.Helper()
	h.run(h.p.objs.AodCmdEnter, uint64(tid), ses, uint64(cmd), mid)
}

func (h *harness) done(tid uint32, ses uint64, cmd uint16, mid uint64) {
	h.t.Helper()
	h.run(h.p.objs.AodCmdDone, uint64(tid), ses, uint64(cmd), mid)
}

func (h *harness) fail(tid uint32, ses uint64, cmd uint16, mid uint64, status uint32, rc int32) {
	h.t.Helper()
	// The kernel widens an int argument with sign extension.
	h.run(h.p.objs.AodCmdErr, uint64(tid), ses, uint64(cmd), mid, uint64(status), uint64(int64(rc)))
}

// startAt records an in-flight request through smb3_cmd_enter, then backdates (or
// postdates) its start in the shared table: the way to give a completion a known
// latency, as bpf_ktime_get_ns cannot be controlled in a test run. A start in the
// future gives latency 0.
func (h *harness) startAt(ses uint64, cmd uint16, mid uint64, tid uint32, startNs uint64) {
	h.t.Helper()
	h.enter(tid, ses, cmd, mid)
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	slots, err := h.p.startSlots()
	if err != nil {
		h.t.Fatal(err)
	}
	for i := range slots {
		s := &slots[i]
		if atomic.LoadUint64(&s.StartNs) != 0 && s.SessionId == ses && s.Mid == mid && s.Command == cmd {
			atomic.StoreUint64(&s.StartNs, startNs)
			return
		}
	}
	h.t.Fatalf("smb3_cmd_enter did not record session %#x mid %d", ses, mid)
}

// ago returns the monotonic time d ago. The clock starts at boot, so d must stay
// below the uptime: tests keep their injected latencies to seconds.
func (h *harness) ago(d time.Duration) uint64 {
	h.t.Helper()
	now := h.now()
	if now <= uint64(d) {
		h.t.Fatalf("uptime %v is shorter than the latency %v to inject", time.Duration(now), d)
	}
	return now - uint64(d)
}

// future is a start time after any completion in the test: the programs clamp the
// latency to 0.
func (h *harness) future() uint64 { return h.now() + uint64(time.Hour) }

func (h *harness) now() uint64 {
	h.t.Helper()
	n, err := monotonicNow()
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

// events drains every record now in the ring. A deadline in the past makes the
// reader return what the programs wrote without waking it, then ErrDeadlineExceeded.
func (h *harness) events() []smbevent.Event {
	h.t.Helper()
	var evs []smbevent.Event
	h.rd.SetDeadline(time.Now())
	for {
		err := h.rd.ReadInto(&h.rec)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return evs
		}
		if err != nil {
			h.t.Fatal(err)
		}
		var ev smbevent.Event
		if err := DecodeEvent(h.rec.RawSample, &ev); err != nil {
			h.t.Fatal(err)
		}
		evs = append(evs, ev)
	}
}

func (h *harness) counters() Counters {
	h.t.Helper()
	c, err := h.p.Counters()
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func (h *harness) histograms() []HistogramSample {
	h.t.Helper()
	s, err := h.p.Histograms(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) errorCounts() []ErrorSample {
	h.t.Helper()
	s, err := h.p.Errors(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) inFlight() []InFlightRequest {
	h.t.Helper()
	s, err := h.p.InFlight(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// thresholds sets the given per-command thresholds; other commands are not tracked.
func (h *harness) thresholds(set map[uint16]time.Duration) {
	h.t.Helper()
	var t [smb.NumCommands]Threshold
	for cmd, lat := range set {
		t[cmd] = Threshold{Tracked: true, Latency: lat}
	}
	if err := h.p.SetThresholds(&t); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) errorFilter(f ErrorFilter) {
	h.t.Helper()
	if err := h.p.SetErrorFilter(f); err != nil {
		h.t.Fatal(err)
	}
}

// threadComm is the current thread's name, as bpf_get_current_comm sees it.
func threadComm(t *testing.T, tid uint32) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(int(tid)) + "/comm")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

func loadTestProgs(t testing.TB, events *ebpf.Map) *testprog.Objects {
	t.Helper()
	o, err := testprog.Load(events)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}
