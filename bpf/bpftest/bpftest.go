// Package bpftest drives aod's real kernel probes in tests. It loads the production
// programs of package bpf through the kernel's verifier and runs them with
// BPF_PROG_TEST_RUN, with the arguments the cifs tracepoints would pass, so that a test
// anywhere in aod gets the real in-kernel pairing, latency, histograms, error counts,
// filtering and ring-buffer records without cifs, a mount or a server.
//
//	h := bpftest.New(t) // skips, saying why, without root or BPF
//	h.SetThresholds(map[uint16]time.Duration{smb.Read: 100 * time.Millisecond})
//	lat := h.Request(bpftest.Request{Session: 0x936c11ff, Tree: 0x53dfe4a, Command: smb.Read, Latency: 150 * time.Millisecond})
//	// lat is the latency the kernel recorded, exactly: 150 ms and a few microseconds.
//	evs := h.Events() // the slow READ, as the receiver would read it
//
// Hand h.Probes() to whatever is under test (the receiver, the agent) as the probes it
// reads; they are not attached to any tracepoint, so only the harness runs them.
//
// # Requests, latencies and the clock
//
// The programs read the time with bpf_ktime_get_ns, which a test cannot set. A chosen
// latency is made by letting smb3_cmd_enter record the start, then moving that start
// back in the shared in-flight table (StartAt, Ago), right before the completion runs.
// The kernel then measures the chosen latency plus the time between the harness's
// clock read and the completion program's (microseconds, more if the thread is
// preempted in between). Request returns the latency the kernel actually recorded, so
// a test can assert on exact buckets and sums; a start in the future (Future) gives
// exactly 0, the zero bucket.
//
// Finding the start to move is a scan of the in-flight table, so a Request costs about
// 0.6 ms with the default table of 65536 entries; tests that make thousands of
// requests can load a smaller one, NewWithOptions(t, bpf.Options{StartEntries: 1024}),
// for about 65 µs.
//
// # The ring
//
// Events reads the ring with a reader of the harness's own. When the code under test
// reads the ring (a receiver given h.Probes()), let it have the records and do not call
// Events: the two readers would share them out.
//
// # Threads
//
// New locks the calling goroutine to its OS thread until the test ends: the programs
// record the current thread as the request's issuer at smb3_cmd_enter (events carry
// it as Pid, with Tgid the test process), so Tid and Comm are what events from that
// goroutine carry. Use a Harness from the goroutine that created it, one call at a
// time.
//
// Every method fails the test (t.Fatal) on an error, so tests need no error checks.
// Elsewhere than Linux, and without root or BPF, New skips the test with the reason.
package bpftest

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/bpf/internal/probeaccess"
	"github.com/linuxdiag/aod/bpf/internal/testprog"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/smb"
)

// Harness runs one bpf.Probes' programs as their tracepoints would. Create it with
// New, NewWithOptions or Wrap.
type Harness struct {
	tb  testing.TB
	p   *bpf.Probes
	in  probeaccess.Internals
	tid uint32

	args [6]uint64 // the arguments of the next run, reused
	ctx  [7]any    // ctx[n] is args[:n], boxed once: boxing a slice allocates
	run  ebpf.RunOptions

	rd   *ringbuf.Reader // opened by the first Events
	rec  ringbuf.Record
	hist []bpf.HistogramSample // Request's scratch

	nextMid uint64 // Request's mids, when it picks them
}

// Require skips tb where the probes cannot be loaded at all: elsewhere than Linux, or
// without root (CI runs the BPF tests as root). New calls it; use it in tests that
// need BPF before they get to New.
func Require(tb testing.TB) {
	tb.Helper()
	testprog.Require(tb)
}

// New loads the production probes with default bpf.Options and returns a harness for
// them; they are closed when the test ends. It skips the test, stating why, where BPF
// programs cannot be loaded (see Require; also EPERM, ENOSYS, or a kernel feature
// missing at load time), and fails it on any other load error.
func New(tb testing.TB) *Harness {
	tb.Helper()
	return NewWithOptions(tb, bpf.Options{})
}

// NewWithOptions is New with map sizes and ring settings of the test's choosing, e.g.
// a tiny in-flight table to provoke evictions or a small ring.
func NewWithOptions(tb testing.TB, opts bpf.Options) *Harness {
	tb.Helper()
	Require(tb)
	p, err := bpf.Load(opts)
	testprog.CheckLoad(tb, err)
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Error(err)
		}
	})
	return Wrap(tb, p)
}

// Wrap returns a harness for probes loaded elsewhere (by the code under test, say);
// the caller keeps closing them. Their programs must not be attached to the cifs
// tracepoints, or real requests mix with the harness's. Like New, it locks the calling
// goroutine to its thread until the test ends.
func Wrap(tb testing.TB, p *bpf.Probes) *Harness {
	tb.Helper()
	Require(tb)
	if probeaccess.Of == nil {
		tb.Skipf("bpftest: no BPF probes on %s", runtime.GOOS)
	}
	runtime.LockOSThread()
	tb.Cleanup(runtime.UnlockOSThread)
	h := &Harness{tb: tb, p: p, in: probeaccess.Of(p), tid: gettid(), nextMid: 1 << 48}
	for n := range h.ctx {
		h.ctx[n] = h.args[:n]
	}
	tb.Cleanup(func() {
		if h.rd != nil {
			h.rd.Close()
		}
	})
	return h
}

// Probes returns the probes the harness drives, to hand to the code under test.
func (h *Harness) Probes() *bpf.Probes { return h.p }

// Ring returns the probes' ring buffer map, for tests that watch it directly (epoll on
// its descriptor) or fill it with test programs.
func (h *Harness) Ring() *ebpf.Map { return h.in.Events }

// Tid is the thread the programs see as the current task: the Pid of the events of
// requests the harness enters.
func (h *Harness) Tid() uint32 { return h.tid }

// Comm is the name of that thread, as the programs record it (Event.CommString).
func (h *Harness) Comm() string {
	h.tb.Helper()
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(int(h.tid)) + "/comm")
	if err != nil {
		h.tb.Fatal(err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

// exec runs prog with the first n arguments in h.args.
func (h *Harness) exec(prog *ebpf.Program, n int) {
	h.tb.Helper()
	h.run.Context = h.ctx[n]
	if _, err := prog.Run(&h.run); err != nil {
		h.tb.Fatalf("bpftest: run %v: %v", prog, err)
	}
}

// cmdArgs places a request's identity in TP_PROTO order: (u32 tid, u64 sesid, u16
// cmd, u64 mid), each widened to 64 bits as raw tracepoints pass them.
func (h *Harness) cmdArgs(session uint64, tree uint32, command uint16, mid uint64) {
	h.args[0], h.args[1], h.args[2], h.args[3] = uint64(tree), session, uint64(command), mid
}

// Enter runs smb3_cmd_enter: the request (session, tree, command, mid) is sent, now,
// by the harness's thread. Note the order: session first, unlike the tracepoint's
// TP_PROTO (tid, sesid, cmd, mid); the harness puts the arguments in their places.
func (h *Harness) Enter(session uint64, tree uint32, command uint16, mid uint64) {
	h.tb.Helper()
	h.cmdArgs(session, tree, command, mid)
	h.exec(h.in.CmdEnter, 4)
}

// Done runs smb3_cmd_done: the response to (session, command, mid) arrived, now,
// successfully. tree is the response header's tree id, which the kernel uses only
// when the request's was 0 (TREE_CONNECT).
func (h *Harness) Done(session uint64, tree uint32, command uint16, mid uint64) {
	h.tb.Helper()
	h.cmdArgs(session, tree, command, mid)
	h.exec(h.in.CmdDone, 4)
}

// Fail runs smb3_cmd_err: the response arrived with NTSTATUS status, which the client
// mapped to rc (a negative errno, e.g. -2 for STATUS_OBJECT_NAME_NOT_FOUND).
func (h *Harness) Fail(session uint64, tree uint32, command uint16, mid uint64, status uint32, rc int32) {
	h.tb.Helper()
	h.cmdArgs(session, tree, command, mid)
	// The kernel widens an int argument with sign extension.
	h.args[4], h.args[5] = uint64(status), uint64(int64(rc))
	h.exec(h.in.CmdErr, 6)
}

// Reconnect runs smb3_reconnect(currmid, conn_id, hostname) for connection connID,
// whose next mid was currentMid. hostname is a kernel address the program reads the
// server name from (see KernelString); 0 reads as an empty name.
func (h *Harness) Reconnect(connID, currentMid, hostname uint64) {
	h.tb.Helper()
	h.args[0], h.args[1], h.args[2] = currentMid, connID, hostname
	h.exec(h.in.Reconnect, 3)
}

// ConnectDone runs smb3_connect_done(hostname, conn_id, addr): connection connID to
// the server named at kernel address hostname (see Reconnect) is up.
func (h *Harness) ConnectDone(connID, hostname uint64) {
	h.tb.Helper()
	h.args[0], h.args[1], h.args[2] = hostname, connID, 0
	h.exec(h.in.ConnectDone, 3)
}

// ConnectErr runs smb3_connect_err(hostname, conn_id, addr, rc): connecting failed
// with rc, a negative errno such as -111 (ECONNREFUSED).
func (h *Harness) ConnectErr(connID, hostname uint64, rc int32) {
	h.tb.Helper()
	h.args[0], h.args[1], h.args[2], h.args[3] = hostname, connID, 0, uint64(int64(rc))
	h.exec(h.in.ConnectErr, 4)
}

// Now is the programs' clock now (CLOCK_MONOTONIC, ns): the clock of Event.StartNs,
// Event.EndNs and bpf.InFlightRequest.StartNs.
func (h *Harness) Now() uint64 {
	h.tb.Helper()
	n, err := h.in.Now()
	if err != nil {
		h.tb.Fatal(err)
	}
	return n
}

// Ago is the programs' clock d ago. The clock starts at boot: d must be shorter than
// the uptime, so keep injected latencies to seconds or minutes.
func (h *Harness) Ago(d time.Duration) uint64 {
	h.tb.Helper()
	return h.ago(d)()
}

// ago returns a function reading the clock d ago, failing the test when the uptime is
// shorter than d.
func (h *Harness) ago(d time.Duration) func() uint64 {
	return func() uint64 {
		h.tb.Helper()
		now := h.Now()
		if now <= uint64(d) {
			h.tb.Fatalf("bpftest: uptime %v is shorter than the latency %v to inject", time.Duration(now), d)
		}
		return now - uint64(d)
	}
}

// Future is a start time after any completion the test runs: the programs measure
// such a request as taking 0 ns (the zero bucket).
func (h *Harness) Future() uint64 {
	h.tb.Helper()
	return h.Now() + uint64(time.Hour)
}

// StartAt runs smb3_cmd_enter for the request, then sets its recorded start to startNs
// (on the programs' clock: Ago, Future): its completion, whenever the test runs it,
// measures from there. The request stays in flight until then, with that age.
func (h *Harness) StartAt(session uint64, tree uint32, command uint16, mid, startNs uint64) {
	h.tb.Helper()
	if startNs == 0 {
		h.tb.Fatal("bpftest: start time 0 marks a free slot in the in-flight table")
	}
	h.startAt(session, tree, command, mid, func() uint64 { return startNs })
}

func (h *Harness) startAt(session uint64, tree uint32, command uint16, mid uint64, start func() uint64) {
	h.tb.Helper()
	h.Enter(session, tree, command, mid)
	if err := h.in.SetStart(session, mid, command, start); err != nil {
		h.tb.Fatalf("bpftest: smb3_cmd_enter did not record the request: %v", err)
	}
}

// Request is one whole SMB request for Harness.Request.
type Request struct {
	Session uint64
	Tree    uint32
	Command uint16 // SMB2 command code (smb.Read, ...)
	// Mid is the SMB MessageId; 0 picks one no other Request of the harness uses (from
	// 2^48 up, clear of the small mids tests choose).
	Mid uint64
	// Latency is how long the request takes (see Harness.Request); 0: exactly 0.
	Latency time.Duration
	// Status, if not 0, makes the request fail with this NTSTATUS (smb3_cmd_err), and
	// Rc is the negative errno the client mapped it to.
	Status uint32
	Rc     int32
}

// Request runs a whole request: smb3_cmd_enter, then smb3_cmd_done, or smb3_cmd_err if
// r.Status is set, r.Latency later. It returns the latency the kernel recorded, read
// back from the request's histogram: r.Latency plus the few microseconds between the
// harness's clock read and the completion program's (exactly 0 for Latency 0). Like a
// real request, it produces a ring record if it is slow or a tracked failure (see
// SetThresholds, SetErrorFilter), and counts in the error map if it failed.
func (h *Harness) Request(r Request) time.Duration {
	h.tb.Helper()
	if r.Latency < 0 {
		h.tb.Fatalf("bpftest: negative latency %v", r.Latency)
	}
	if r.Mid == 0 {
		r.Mid = h.nextMid
		h.nextMid++
	}
	start := h.ago(r.Latency)
	if r.Latency == 0 {
		start = h.Future
	}
	before := h.recorded(r)
	h.startAt(r.Session, r.Tree, r.Command, r.Mid, start)
	if r.Status != 0 {
		h.Fail(r.Session, r.Tree, r.Command, r.Mid, r.Status, r.Rc)
	} else {
		h.Done(r.Session, r.Tree, r.Command, r.Mid)
	}
	after := h.recorded(r)
	if after.Count != before.Count+1 {
		h.tb.Fatalf("bpftest: %s of session %#x, tree %#x not recorded once in its histogram (%d, then %d; counters %+v)",
			smb.Command(r.Command), r.Session, r.Tree, before.Count, after.Count, h.Counters())
	}
	return time.Duration(after.SumNs - before.SumNs)
}

// recorded returns the histogram the kernel records r in (zero if none yet): with
// per-cgroup series (Probes.SetPerCgroup), the sum of r's key's over every cgroup.
func (h *Harness) recorded(r Request) bpf.HistogramSample {
	h.tb.Helper()
	var err error
	h.hist, err = h.p.Histograms(h.hist)
	if err != nil {
		h.tb.Fatal(err)
	}
	var sum bpf.HistogramSample
	for _, s := range h.hist {
		if s.Command == r.Command && s.SessionID == r.Session && s.TreeID == r.Tree && s.Status == r.Status {
			sum.ZeroCount += s.ZeroCount
			for j := range s.Buckets {
				sum.Buckets[j] += s.Buckets[j]
			}
			sum.Count += s.Count
			sum.SumNs += s.SumNs
		}
	}
	return sum
}

// Events returns every record now in the ring, decoded. The programs wake no reader
// for most records; the harness reads with a deadline in the past, which returns what
// is there without waiting. It opens its reader on first use (see "The ring" above).
func (h *Harness) Events() []event.Event {
	h.tb.Helper()
	if h.rd == nil {
		rd, err := h.p.NewReader()
		if err != nil {
			h.tb.Fatal(err)
		}
		h.rd = rd
	}
	var evs []event.Event
	h.rd.SetDeadline(time.Now())
	for {
		err := h.rd.ReadInto(&h.rec)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return evs
		}
		if err != nil {
			h.tb.Fatal(err)
		}
		var ev event.Event
		if err := bpf.DecodeEvent(h.rec.RawSample, &ev); err != nil {
			h.tb.Fatal(err)
		}
		evs = append(evs, ev)
	}
}

// Counters returns the probes' loss and activity counters.
func (h *Harness) Counters() bpf.Counters {
	h.tb.Helper()
	c, err := h.p.Counters()
	if err != nil {
		h.tb.Fatal(err)
	}
	return c
}

// Histograms returns the latency histograms, one per kernel key.
func (h *Harness) Histograms() []bpf.HistogramSample {
	h.tb.Helper()
	s, err := h.p.Histograms(nil)
	if err != nil {
		h.tb.Fatal(err)
	}
	return s
}

// Errors returns the failure counts.
func (h *Harness) Errors() []bpf.ErrorSample {
	h.tb.Helper()
	s, err := h.p.Errors(nil)
	if err != nil {
		h.tb.Fatal(err)
	}
	return s
}

// InFlight returns the requests entered and not completed.
func (h *Harness) InFlight() []bpf.InFlightRequest {
	h.tb.Helper()
	s, err := h.p.InFlight(nil)
	if err != nil {
		h.tb.Fatal(err)
	}
	return s
}

// SetThresholds makes exactly the given commands produce slow events, each at or over
// its latency (0: every request of it); the others produce none.
func (h *Harness) SetThresholds(set map[uint16]time.Duration) {
	h.tb.Helper()
	var t [smb.NumCommands]bpf.Threshold
	for cmd, lat := range set {
		if int(cmd) >= len(t) {
			h.tb.Fatalf("bpftest: command %d is not an SMB2 command", cmd)
		}
		t[cmd] = bpf.Threshold{Tracked: true, Latency: lat}
	}
	if err := h.p.SetThresholds(&t); err != nil {
		h.tb.Fatal(err)
	}
}

// SetErrorFilter selects the failures that produce error events.
func (h *Harness) SetErrorFilter(f bpf.ErrorFilter) {
	h.tb.Helper()
	if err := h.p.SetErrorFilter(f); err != nil {
		h.tb.Fatal(err)
	}
}
