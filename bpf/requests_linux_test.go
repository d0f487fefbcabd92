//go:build linux

package bpf_test

// What the programs do, driven through the real verifier and BPF_PROG_TEST_RUN by
// bpf/bpftest.

import (
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/bpf/bpftest"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/latencyhist"
	"github.com/linuxdiag/aod/internal/podattr/podattrtest"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/smb"
)

const (
	statusNotFound = 0xc0000034 // STATUS_OBJECT_NAME_NOT_FOUND, rc -ENOENT
	statusEOF      = 0xc0000011 // STATUS_END_OF_FILE, rc -ENODATA
)

func TestEnterDoneGivesOneEventWithItsLatency(t *testing.T) {
	h := bpftest.New(t)
	h.SetThresholds(map[uint16]time.Duration{smb.Read: 0}) // every READ is "slow"

	t0 := h.Now()
	h.Enter(0xabc, 7, smb.Read, 42)
	t1 := h.Now()
	h.Done(0xabc, 7, smb.Read, 42)
	t2 := h.Now()

	evs := h.Events()
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1: %+v", len(evs), evs)
	}
	ev := evs[0]
	if ev.Protocol != proto.SMB || ev.Kind != event.KindSlow || ev.Command != smb.Read || ev.SessionID != 0xabc || ev.TreeID != 7 ||
		ev.MessageID != 42 || ev.Status != 0 || ev.Rc != 0 {
		t.Errorf("event %+v", ev)
	}
	// The latency is the time between the two program runs: bounded by clock reads
	// taken around them.
	if ev.StartNs < t0 || ev.StartNs > t1 || ev.EndNs < t1 || ev.EndNs > t2 {
		t.Errorf("start %d not in [%d, %d] or end %d not in [%d, %d]", ev.StartNs, t0, t1, ev.EndNs, t1, t2)
	}
	// Identity of the task that issued the request, captured at enter.
	if ev.Pid != h.Tid() || ev.Tgid != uint32(os.Getpid()) {
		t.Errorf("pid/tgid %d/%d, want %d/%d", ev.Pid, ev.Tgid, h.Tid(), os.Getpid())
	}
	if got, want := ev.CommString(), h.Comm(); got != want {
		t.Errorf("comm %q, want %q", got, want)
	}

	hs := h.Histograms()
	if len(hs) != 1 {
		t.Fatalf("%d histograms, want 1", len(hs))
	}
	lat := ev.EndNs - ev.StartNs
	j, zero := latencyhist.BucketOf(lat)
	s := hs[0]
	if s.Count != 1 || s.SumNs != lat || s.Command != smb.Read || s.SessionID != 0xabc || s.TreeID != 7 {
		t.Errorf("histogram %+v, want one READ request of %d ns", s, lat)
	}
	if zero && s.ZeroCount != 1 || !zero && s.Buckets[j] != 1 {
		t.Errorf("latency %d ns not in bucket %d (zero=%v)", lat, j, zero)
	}
	if n := len(h.InFlight()); n != 0 {
		t.Errorf("%d requests still in flight after completion", n)
	}
	c := h.Counters()
	if c.EventsEmitted != 1 || c.Orphans != 0 || c.DoubleCompletions != 0 || c.EventsFiltered != 0 {
		t.Errorf("counters %+v", c)
	}
}

func TestDoubleDoneGivesOneEvent(t *testing.T) {
	h := bpftest.New(t)
	h.SetThresholds(map[uint16]time.Duration{smb.QueryInfo: 0})
	// 6.12 fires smb3_cmd_done twice for some QUERY_INFO mids.
	h.Enter(0x936c11ff, 9, smb.QueryInfo, 320)
	h.Done(0x936c11ff, 9, smb.QueryInfo, 320)
	h.Done(0x936c11ff, 9, smb.QueryInfo, 320)

	if evs := h.Events(); len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	c := h.Counters()
	if c.DoubleCompletions != 1 || c.Orphans != 0 {
		t.Errorf("double %d orphans %d, want 1 and 0", c.DoubleCompletions, c.Orphans)
	}
	if hs := h.Histograms(); len(hs) != 1 || hs[0].Count != 1 {
		t.Errorf("histograms %+v, want one request counted once", hs)
	}
}

func TestOrphanCompletionsAreCounted(t *testing.T) {
	h := bpftest.New(t)
	h.SetThresholds(map[uint16]time.Duration{smb.Read: 0})
	h.SetErrorFilter(bpf.ErrorFilter{Statuses: []uint32{statusNotFound}})

	h.Done(0x10, 1, smb.Read, 500) // never entered: no latency, no event
	if evs := h.Events(); len(evs) != 0 {
		t.Fatalf("orphan done gave events %+v", evs)
	}
	if c := h.Counters(); c.Orphans != 1 || c.DoubleCompletions != 0 {
		t.Errorf("orphans %d double %d, want 1 and 0", c.Orphans, c.DoubleCompletions)
	}
	if hs := h.Histograms(); len(hs) != 0 {
		t.Errorf("an orphan was measured: %+v", hs)
	}

	// An orphan failure still counts as an error, and a tracked one is reported,
	// with start unknown (start == end, no task).
	h.Fail(0x10, 1, smb.Create, 501, statusNotFound, -2)
	evs := h.Events()
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	if ev := evs[0]; ev.Protocol != proto.SMB || ev.Kind != event.KindError || ev.Status != statusNotFound || ev.Rc != -2 ||
		ev.StartNs != ev.EndNs || ev.Pid != 0 || ev.CommString() != "" || ev.MessageID != 501 {
		t.Errorf("orphan error event %+v", ev)
	}
	if errs := h.Errors(); len(errs) != 1 || errs[0].Count != 1 || errs[0].Status != statusNotFound {
		t.Errorf("error counts %+v", errs)
	}
	if hs := h.Histograms(); len(hs) != 0 {
		t.Errorf("an orphan failure was measured: %+v", hs)
	}
	if c := h.Counters(); c.Orphans != 2 {
		t.Errorf("orphans %d, want 2", c.Orphans)
	}
}

func TestNeverCompletedRequestsAgeOut(t *testing.T) {
	h := bpftest.New(t)
	old := h.Ago(30 * time.Second)
	// A failed compound: the open fails, the chained requests never complete.
	h.StartAt(0x20, 3, smb.QueryInfo, 11, old)
	h.StartAt(0x20, 3, smb.Close, 12, old)
	h.StartAt(0x20, 3, smb.ChangeNotify, 13, old) // waits by design
	h.Enter(0x20, 3, smb.Read, 14)                // fresh

	in := h.InFlight()
	if len(in) != 4 {
		t.Fatalf("%d in flight, want 4: %+v", len(in), in)
	}
	for _, r := range in {
		if r.MessageID != 14 && (r.Age < 30*time.Second || r.Pid != h.Tid() || r.TreeID != 3) {
			t.Errorf("in-flight %+v: not a 30 s old request", r)
		}
		if r.MessageID == 14 && (r.Pid != h.Tid() || r.Command != smb.Read || r.TreeID != 3 || r.Age >= 30*time.Second) {
			t.Errorf("in-flight %+v: not the fresh READ", r)
		}
	}

	n, err := h.Probes().SweepStale(10 * time.Second)
	if err != nil || n != 2 {
		t.Fatalf("SweepStale = %d, %v; want 2 aged out", n, err)
	}
	left := h.InFlight()
	mids := []uint64{}
	for _, r := range left {
		mids = append(mids, r.MessageID)
	}
	slices.Sort(mids)
	if !slices.Equal(mids, []uint64{13, 14}) {
		t.Errorf("left in flight: mids %v, want [13 14]", mids)
	}
	if c := h.Counters(); c.AgedOut != 2 {
		t.Errorf("AgedOut %d, want 2", c.AgedOut)
	}
	// A late completion of an aged-out request is an orphan.
	h.Done(0x20, 3, smb.Close, 12)
	if c := h.Counters(); c.Orphans != 1 {
		t.Errorf("orphans %d, want 1", c.Orphans)
	}
	if _, err := h.Probes().SweepStale(0); err == nil {
		t.Error("SweepStale(0) accepted")
	}
}

const statusDirNotEmpty = 0xc0000101 // STATUS_DIRECTORY_NOT_EMPTY, rc -ENOTEMPTY

// inFlightMids lists the mids the probes hold in flight, sorted.
func inFlightMids(h *bpftest.Harness) []uint64 {
	var mids []uint64
	for _, r := range h.InFlight() {
		mids = append(mids, r.MessageID)
	}
	slices.Sort(mids)
	return mids
}

// onOtherThread runs f with a harness for h's probes on a thread of its own: a task other
// than the harness's, such as cifsd completing an asynchronous request.
func onOtherThread(t *testing.T, h *bpftest.Harness, f func(*bpftest.Harness)) {
	t.Helper()
	done := make(chan uint32)
	go func() {
		// Wrap locks this goroutine to its thread; the thread ends with it.
		other := bpftest.Wrap(t, h.Probes())
		f(other)
		done <- other.Tid()
	}()
	if tid := <-done; tid == h.Tid() {
		t.Fatalf("the other harness ran on the harness's thread %d", tid)
	}
}

// The client reads a compound's results in order and stops at the first failure: the
// members after it never complete in the trace. The failure frees them.
func TestFailedCompoundLeavesNothingInFlight(t *testing.T) {
	const ses, tree = 0x30, 5
	for _, tc := range []struct {
		name     string
		run      func(h *bpftest.Harness)
		released uint64
	}{{
		// stat of a missing name: CREATE + QUERY_INFO + CLOSE, the CREATE fails.
		name: "first member fails",
		run: func(h *bpftest.Harness) {
			h.Enter(ses, tree, smb.Create, 100)
			h.Enter(ses, tree, smb.QueryInfo, 101)
			h.Enter(ses, tree, smb.Close, 102)
			h.Fail(ses, tree, smb.Create, 100, statusNotFound, -int32(unix.ENOENT))
		},
		released: 2,
	}, {
		// rmdir of a non-empty directory: CREATE + SET_INFO (delete) + CLOSE.
		name: "middle member fails",
		run: func(h *bpftest.Harness) {
			h.Enter(ses, tree, smb.Create, 200)
			h.Enter(ses, tree, smb.SetInfo, 201)
			h.Enter(ses, tree, smb.Close, 202)
			h.Done(ses, tree, smb.Create, 200)
			h.Fail(ses, tree, smb.SetInfo, 201, statusDirNotEmpty, -int32(unix.ENOTEMPTY))
		},
		released: 1,
	}, {
		// The client charged a member several credits: the next member's mid skips.
		name: "members apart by credit charges",
		run: func(h *bpftest.Harness) {
			h.Enter(ses, tree, smb.Create, 300)
			h.Enter(ses, tree, smb.QueryInfo, 301)
			h.Enter(ses, tree, smb.Close, 305)
			h.Fail(ses, tree, smb.Create, 300, statusNotFound, -int32(unix.ENOENT))
		},
		released: 2,
	}, {
		name: "last member fails",
		run: func(h *bpftest.Harness) {
			h.Enter(ses, tree, smb.Create, 400)
			h.Enter(ses, tree, smb.SetInfo, 401)
			h.Enter(ses, tree, smb.Close, 402)
			h.Done(ses, tree, smb.Create, 400)
			h.Done(ses, tree, smb.SetInfo, 401)
			h.Fail(ses, tree, smb.Close, 402, 0xc0000008, -int32(unix.EBADF)) // STATUS_INVALID_HANDLE
		},
	}, {
		name: "compound succeeds",
		run: func(h *bpftest.Harness) {
			h.Enter(ses, tree, smb.Create, 500)
			h.Enter(ses, tree, smb.SetInfo, 501)
			h.Enter(ses, tree, smb.Close, 502)
			h.Done(ses, tree, smb.Create, 500)
			h.Done(ses, tree, smb.SetInfo, 501)
			h.Done(ses, tree, smb.Close, 502)
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			h := bpftest.New(t)
			tc.run(h)
			if mids := inFlightMids(h); len(mids) != 0 {
				t.Errorf("mids %v still in flight, want none", mids)
			}
			c := h.Counters()
			if c.ChainReleased != tc.released {
				t.Errorf("ChainReleased %d, want %d", c.ChainReleased, tc.released)
			}
			if c.Orphans != 0 || c.StartEvictions != 0 {
				t.Errorf("counters %+v: a request was lost", c)
			}
		})
	}
}

// What a failure must not free: requests outside its compound, however near their mids.
func TestFailedRequestKeepsUnrelatedRequestsInFlight(t *testing.T) {
	const ses, tree = 0x40, 5
	fail := func(h *bpftest.Harness, mid uint64) {
		h.Fail(ses, tree, smb.Create, mid, statusNotFound, -int32(unix.ENOENT))
	}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, h *bpftest.Harness)
		keep []uint64
	}{{
		name: "another session's next mid",
		run: func(t *testing.T, h *bpftest.Harness) {
			h.Enter(ses, tree, smb.Create, 10)
			h.Enter(ses+1, tree, smb.Read, 11)
			fail(h, 10)
		},
		keep: []uint64{11},
	}, {
		// Another channel of the session counts its mids apart: this task's earlier
		// request there may hold the next mid.
		name: "the task's earlier request with the next mid",
		run: func(t *testing.T, h *bpftest.Harness) {
			h.Enter(ses, tree, smb.Write, 21)
			h.Enter(ses, tree, smb.Create, 20)
			fail(h, 20)
		},
		keep: []uint64{21},
	}, {
		name: "another task's request with the next mid",
		run: func(t *testing.T, h *bpftest.Harness) {
			h.Enter(ses, tree, smb.Create, 30)
			onOtherThread(t, h, func(o *bpftest.Harness) { o.Enter(ses, tree, smb.Read, 31) })
			fail(h, 30)
		},
		keep: []uint64{31},
	}, {
		// An asynchronous request (READ, WRITE) fails in cifsd, not in the task that sent
		// it; that task's later requests are not chained to it.
		name: "failure read by another task",
		run: func(t *testing.T, h *bpftest.Harness) {
			h.Enter(ses, tree, smb.Read, 40)
			h.Enter(ses, tree, smb.Read, 41)
			h.Enter(ses, tree, smb.Read, 42)
			onOtherThread(t, h, func(o *bpftest.Harness) {
				o.Fail(ses, tree, smb.Read, 40, statusEOF, -int32(unix.ENODATA))
			})
		},
		keep: []uint64{41, 42},
	}, {
		// A status the client maps to success (rc 0) does not end the compound: the
		// members after it complete.
		name: "failure mapped to no error",
		run: func(t *testing.T, h *bpftest.Harness) {
			h.Enter(ses, tree, smb.QueryInfo, 50)
			h.Enter(ses, tree, smb.Close, 51)
			h.Fail(ses, tree, smb.QueryInfo, 50, 0x80000005, 0) // STATUS_BUFFER_OVERFLOW
		},
		keep: []uint64{51},
	}, {
		name: "beyond the compound's mids",
		run: func(t *testing.T, h *bpftest.Harness) {
			h.Enter(ses, tree, smb.Create, 60)
			h.Enter(ses, tree, smb.Read, 69) // AOD_CHAIN_MIDS after 60 is 68
			fail(h, 60)
		},
		keep: []uint64{69},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			h := bpftest.New(t)
			tc.run(t, h)
			if mids := inFlightMids(h); !slices.Equal(mids, tc.keep) {
				t.Errorf("mids %v in flight, want %v", mids, tc.keep)
			}
			if c := h.Counters(); c.ChainReleased != 0 {
				t.Errorf("ChainReleased %d, want 0", c.ChainReleased)
			}
		})
	}
}

func TestPerCommandThresholdsFilter(t *testing.T) {
	h := bpftest.New(t)
	h.SetThresholds(map[uint16]time.Duration{smb.Read: time.Second, smb.Write: 0})

	h.StartAt(0x30, 5, smb.Read, 1, h.Ago(5*time.Second))   // 5 s >= 1 s: slow
	h.StartAt(0x30, 5, smb.Read, 2, h.Future())             // latency 0: fast
	h.StartAt(0x30, 5, smb.Write, 3, h.Future())            // threshold 0: every WRITE
	h.StartAt(0x30, 5, smb.Create, 4, h.Ago(5*time.Second)) // CREATE not tracked, however slow
	for mid, cmd := range map[uint64]uint16{1: smb.Read, 2: smb.Read, 3: smb.Write, 4: smb.Create} {
		h.Done(0x30, 5, cmd, mid)
	}

	evs := h.Events()
	var mids []uint64
	for _, ev := range evs {
		if ev.Kind != event.KindSlow {
			t.Errorf("event %+v is not a slow one", ev)
		}
		mids = append(mids, ev.MessageID)
	}
	slices.Sort(mids)
	if !slices.Equal(mids, []uint64{1, 3}) {
		t.Fatalf("slow events for mids %v, want [1 3]", mids)
	}
	for _, ev := range evs {
		if ev.MessageID == 1 && (ev.Latency() < 5*time.Second || ev.Pid != h.Tid() || ev.CommString() != h.Comm()) {
			t.Errorf("slow READ %+v: wrong latency or task", ev)
		}
	}
	if c := h.Counters(); c.EventsFiltered != 2 || c.EventsEmitted != 2 {
		t.Errorf("filtered %d emitted %d, want 2 and 2", c.EventsFiltered, c.EventsEmitted)
	}
}

func TestThresholdChangesApplyImmediately(t *testing.T) {
	h := bpftest.New(t)
	mid := uint64(100)
	slowREAD := func(latency time.Duration) int {
		t.Helper()
		mid++
		h.StartAt(0x40, 1, smb.Read, mid, h.Ago(latency))
		h.Done(0x40, 1, smb.Read, mid)
		return len(h.Events())
	}

	h.SetThresholds(map[uint16]time.Duration{smb.Read: time.Second})
	if n := slowREAD(2 * time.Second); n != 1 {
		t.Fatalf("2 s READ with a 1 s threshold: %d events, want 1", n)
	}
	h.SetThresholds(nil) // READ no longer tracked
	if n := slowREAD(2 * time.Second); n != 0 {
		t.Errorf("untracked READ: %d events, want 0", n)
	}
	h.SetThresholds(map[uint16]time.Duration{smb.Read: 3 * time.Second})
	if n := slowREAD(2 * time.Second); n != 0 {
		t.Errorf("2 s READ under a 3 s threshold: %d events, want 0", n)
	}
	if n := slowREAD(4 * time.Second); n != 1 {
		t.Errorf("4 s READ over a 3 s threshold: %d events, want 1", n)
	}

	var bad [smb.NumCommands]bpf.Threshold
	bad[smb.Read] = bpf.Threshold{Tracked: true, Latency: -time.Second}
	if err := h.Probes().SetThresholds(&bad); err == nil {
		t.Error("negative threshold accepted")
	}
}

func TestTrackedAndUntrackedFailures(t *testing.T) {
	h := bpftest.New(t)
	h.SetThresholds(map[uint16]time.Duration{smb.Read: time.Second})
	mid := uint64(200)
	failure := func(cmd uint16, status uint32, rc int32, latency time.Duration) []event.Event {
		t.Helper()
		mid++
		start := h.Future() // latency 0
		if latency > 0 {
			start = h.Ago(latency)
		}
		h.StartAt(0x50, 2, cmd, mid, start)
		h.Fail(0x50, 2, cmd, mid, status, rc)
		return h.Events()
	}

	h.SetErrorFilter(bpf.ErrorFilter{Statuses: []uint32{statusNotFound}})
	if evs := failure(smb.Create, statusNotFound, -2, 0); len(evs) != 1 ||
		evs[0].Kind != event.KindError || evs[0].Status != statusNotFound || evs[0].Rc != -2 || evs[0].Command != smb.Create {
		t.Errorf("tracked status: events %+v, want one error event", evs)
	}
	if evs := failure(smb.Read, statusEOF, -61, 0); len(evs) != 0 {
		t.Errorf("untracked status: events %+v, want none", evs)
	}
	// Untracked failure, but slow: a slow event that carries the status.
	if evs := failure(smb.Read, statusEOF, -61, 2*time.Second); len(evs) != 1 ||
		evs[0].Kind != event.KindSlow || evs[0].Status != statusEOF || evs[0].Rc != -61 {
		t.Errorf("slow untracked failure: events %+v, want one slow event with its status", evs)
	}

	h.SetErrorFilter(bpf.ErrorFilter{Errnos: []int32{61}}) // ENODATA: what EOF maps to
	if evs := failure(smb.Read, statusEOF, -61, 0); len(evs) != 1 || evs[0].Kind != event.KindError {
		t.Errorf("tracked errno: events %+v, want one error event", evs)
	}
	if evs := failure(smb.Create, statusNotFound, -2, 0); len(evs) != 0 {
		t.Errorf("status no longer tracked: events %+v, want none", evs)
	}

	h.SetErrorFilter(bpf.ErrorFilter{All: true})
	if evs := failure(smb.Write, 0xc000000d, -22, 0); len(evs) != 1 || evs[0].Kind != event.KindError {
		t.Errorf("all failures tracked: events %+v, want one error event", evs)
	}
	h.SetErrorFilter(bpf.ErrorFilter{})
	if evs := failure(smb.Write, 0xc000000d, -22, 0); len(evs) != 0 {
		t.Errorf("nothing tracked: events %+v, want none", evs)
	}
	if err := h.Probes().SetErrorFilter(bpf.ErrorFilter{Errnos: []int32{-5}}); err == nil {
		t.Error("negative errno accepted")
	}

	// Every failure is counted per (command, session, tree, status), tracked or not.
	got := map[[2]uint32]uint64{}
	for _, e := range h.Errors() {
		if e.SessionID != 0x50 || e.TreeID != 2 {
			t.Errorf("error sample %+v: wrong session or tree", e)
		}
		got[[2]uint32{uint32(e.Command), e.Status}] += e.Count
	}
	want := map[[2]uint32]uint64{
		{uint32(smb.Create), statusNotFound}: 2,
		{uint32(smb.Read), statusEOF}:        3,
		{uint32(smb.Write), 0xc000000d}:      2,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("error counts %v, want %v", got, want)
	}
}

func TestKnownLatenciesLandInTheirBuckets(t *testing.T) {
	h := bpftest.New(t)
	h.SetThresholds(map[uint16]time.Duration{smb.Read: 0, smb.Write: 0}) // learn every exact latency
	type key struct {
		cmd    uint16
		ses    uint64
		status uint32
	}
	want := map[key]*bpf.HistogramSample{}
	latencies := []time.Duration{
		10 * time.Microsecond, 100 * time.Microsecond, time.Millisecond, 7 * time.Millisecond,
		50 * time.Millisecond, time.Second, 3 * time.Second, 20 * time.Second,
	}
	mid := uint64(0)
	// Successes, and failures (their latencies apart, per status) of the same command
	// and session.
	for _, k := range []key{{smb.Read, 0x60, 0}, {smb.Write, 0x60, 0}, {smb.Read, 0x61, 0}, {smb.Read, 0x60, statusEOF}, {smb.Read, 0x60, statusNotFound}} {
		complete := func() {
			if k.status != 0 {
				h.Fail(k.ses, 8, k.cmd, mid, k.status, -61)
			} else {
				h.Done(k.ses, 8, k.cmd, mid)
			}
		}
		for _, lat := range latencies {
			mid++
			h.StartAt(k.ses, 8, k.cmd, mid, h.Ago(lat))
			complete()
		}
		mid++
		h.StartAt(k.ses, 8, k.cmd, mid, h.Future()) // latency 0: zero bucket
		complete()
	}
	for _, ev := range h.Events() {
		k := key{ev.Command, ev.SessionID, ev.Status}
		s := want[k]
		if s == nil {
			s = &bpf.HistogramSample{Protocol: proto.SMB, Command: k.cmd, SessionID: k.ses, TreeID: 8, Status: k.status}
			want[k] = s
		}
		lat := ev.EndNs - ev.StartNs
		if ev.StartNs > ev.EndNs {
			lat = 0
		}
		if j, zero := latencyhist.BucketOf(lat); zero {
			s.ZeroCount++
		} else {
			s.Buckets[j]++
		}
		s.Count++
		s.SumNs += lat
	}
	got := h.Histograms()
	if len(got) != 5 || len(want) != 5 {
		t.Fatalf("%d histograms from %d keys, want 5", len(got), len(want))
	}
	for _, g := range got {
		w := want[key{g.Command, g.SessionID, g.Status}]
		if w == nil || !reflect.DeepEqual(g, *w) {
			t.Errorf("histogram\n got %+v\nwant %+v", g, w)
		}
		if g.Count != uint64(len(latencies)+1) || g.ZeroCount != 1 {
			t.Errorf("histogram count %d zero %d, want %d and 1", g.Count, g.ZeroCount, len(latencies)+1)
		}
	}
	// The error map counts the same failures, per status.
	for _, e := range h.Errors() {
		if e.Count != uint64(len(latencies)+1) || e.Command != smb.Read || e.SessionID != 0x60 || (e.Status != statusEOF && e.Status != statusNotFound) {
			t.Errorf("error count %+v", e)
		}
	}

	// The same histograms, read into a reused slice.
	again, err := h.Probes().Histograms(got)
	if err != nil || len(again) != 5 || &again[0] != &got[0] {
		t.Errorf("reusing the slice: %d samples, %v, same backing array %v", len(again), err, &again[0] == &got[0])
	}
}

func TestTreeAndSessionIDsOfResponses(t *testing.T) {
	h := bpftest.New(t)
	// TREE_CONNECT is sent with tree id 0; the response carries the new one.
	h.Enter(0x70, 0, smb.TreeConnect, 1)
	h.Done(0x70, 0x55, smb.TreeConnect, 1)
	// An async response carries its AsyncId where the tree id was: keep the request's.
	h.Enter(0x70, 7, smb.Write, 2)
	h.Done(0x70, 0xdeadbeef, smb.Write, 2)
	// The first SESSION_SETUP leg is sent with session id 0; the response has the new
	// session id (here with STATUS_MORE_PROCESSING_REQUIRED, an "error").
	h.Enter(0, 0, smb.SessionSetup, 3)
	h.Fail(0x71, 0, smb.SessionSetup, 3, 0xc0000016, -5)

	got := map[uint16]bpf.HistogramSample{}
	for _, s := range h.Histograms() {
		got[s.Command] = s
	}
	if s := got[smb.TreeConnect]; s.TreeID != 0x55 || s.SessionID != 0x70 || s.Count != 1 {
		t.Errorf("TREE_CONNECT histogram %+v, want tree 0x55", s)
	}
	if s := got[smb.Write]; s.TreeID != 7 || s.Count != 1 {
		t.Errorf("async WRITE histogram %+v, want the request's tree 7", s)
	}
	if s := got[smb.SessionSetup]; s.SessionID != 0x71 || s.Count != 1 {
		t.Errorf("SESSION_SETUP histogram %+v, want session 0x71", s)
	}
	if c := h.Counters(); c.Orphans != 0 {
		t.Errorf("%d orphans: a completion was not paired", c.Orphans)
	}
	if n := len(h.InFlight()); n != 0 {
		t.Errorf("%d requests left in flight", n)
	}
	// A repeated completion of the session setup response is still recognised.
	h.Fail(0x71, 0, smb.SessionSetup, 3, 0xc0000016, -5)
	if c := h.Counters(); c.DoubleCompletions != 1 || c.Orphans != 0 {
		t.Errorf("double %d orphans %d, want 1 and 0", c.DoubleCompletions, c.Orphans)
	}
}

func TestStartCollisionCounted(t *testing.T) {
	h := bpftest.New(t)
	h.Enter(0x80, 1, smb.Negotiate, 0)
	h.Enter(0x80, 1, smb.Negotiate, 0)
	if c := h.Counters(); c.StartCollisions != 1 {
		t.Errorf("start collisions %d, want 1", c.StartCollisions)
	}
	if n := len(h.InFlight()); n != 1 {
		t.Errorf("%d in flight, want the newer start only", n)
	}
}

func TestEvictionWhenBucketFull(t *testing.T) {
	// Two slots: one bucket. A third request evicts the older of the two.
	h := bpftest.NewWithOptions(t, bpf.Options{StartEntries: 2})
	h.StartAt(0xb0, 1, smb.Read, 1, h.Ago(2*time.Second))
	h.StartAt(0xb1, 1, smb.Read, 2, h.Ago(time.Second))
	h.Enter(0xb2, 1, smb.Read, 3)
	if c := h.Counters(); c.StartEvictions != 1 {
		t.Fatalf("evictions %d, want 1", c.StartEvictions)
	}
	h.Done(0xb0, 1, smb.Read, 1) // the evicted one
	h.Done(0xb1, 1, smb.Read, 2)
	h.Done(0xb2, 1, smb.Read, 3)
	c := h.Counters()
	if c.Orphans != 1 || c.EventsFiltered != 2 {
		t.Errorf("orphans %d filtered %d, want the evicted request orphaned and two paired", c.Orphans, c.EventsFiltered)
	}
	if _, err := bpf.Load(bpf.Options{StartEntries: 3}); err == nil {
		t.Error("a table size that is not a power of two was accepted")
	}
}

func TestFullMapsAreCounted(t *testing.T) {
	h := bpftest.NewWithOptions(t, bpf.Options{HistogramEntries: 2, ErrorEntries: 1})
	for i := range uint64(3) {
		h.Enter(0x90+i, 1, smb.Create, i)
		h.Fail(0x90+i, 1, smb.Create, i, statusNotFound, -2)
	}
	c := h.Counters()
	if c.HistogramMapFull != 1 || c.ErrorMapFull != 2 {
		t.Errorf("histogram full %d error full %d, want 1 and 2", c.HistogramMapFull, c.ErrorMapFull)
	}
	n, err := h.Probes().PruneSessions(func(ses uint64) bool { return ses != 0x90 })
	if err != nil || n != 2 { // one histogram, one error count
		t.Fatalf("PruneSessions = %d, %v; want 2", n, err)
	}
	if hs := h.Histograms(); len(hs) != 1 || hs[0].SessionID != 0x91 {
		t.Errorf("histograms after pruning %+v, want session 0x91 only", hs)
	}
	if es := h.Errors(); len(es) != 0 {
		t.Errorf("error counts after pruning %+v, want none", es)
	}
}

func TestConnectionEvents(t *testing.T) {
	h := bpftest.New(t)
	host, name := bpftest.KernelString(t)
	h.Reconnect(0x1234, 77, host)
	h.ConnectDone(0x1235, host)
	h.ConnectErr(0x1236, 0, -111) // ECONNREFUSED; an unreadable name

	evs := h.Events()
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	want := []struct {
		kind   event.Kind
		conn   uint64
		mid    uint64
		rc     int32
		server string
	}{
		{event.KindReconnect, 0x1234, 77, 0, name},
		{event.KindConnect, 0x1235, 0, 0, name},
		{event.KindConnectError, 0x1236, 0, -111, ""}, // unreadable pointer: empty
	}
	for i, w := range want {
		ev := evs[i]
		if ev.Protocol != proto.SMB || ev.Kind != w.kind || ev.ConnID != w.conn || ev.MessageID != w.mid || ev.Rc != w.rc ||
			ev.ServerString() != w.server || ev.Pid != h.Tid() || ev.EndNs == 0 || ev.StartNs != ev.EndNs {
			t.Errorf("event %d: %+v (server %q), want %+v", i, ev, ev.ServerString(), w)
		}
	}
}

// wakeHarness is a harness pinned to one CPU (the wake-up count is per CPU) with an
// epoll set on the ring: epoll reports the ring only after a wake-up, where poll(2)
// would look at the data itself.
func wakeHarness(t *testing.T, opts bpf.Options) (emit func(n int), woken func() bool) {
	h := bpftest.NewWithOptions(t, opts)
	var one, all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	for cpu := range 1024 {
		if all.IsSet(cpu) {
			one.Set(cpu)
			break
		}
	}
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.SchedSetaffinity(0, &all) })
	h.SetThresholds(map[uint16]time.Duration{smb.Read: 0})

	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(ep) })
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, h.Ring().FD(), &unix.EpollEvent{Events: unix.EPOLLIN}); err != nil {
		t.Fatal(err)
	}
	mid := uint64(0)
	emit = func(n int) {
		for range n {
			mid++
			h.Enter(0xa0, 1, smb.Read, mid)
			h.Done(0xa0, 1, smb.Read, mid)
		}
	}
	woken = func() bool {
		evs := make([]unix.EpollEvent, 1)
		n, err := unix.EpollWait(ep, evs, 0)
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	return emit, woken
}

func TestWakeupEveryNRecords(t *testing.T) {
	emit, woken := wakeHarness(t, bpf.Options{WakeupEvery: 4})
	emit(3)
	if woken() {
		t.Fatal("reader woken before the 4th record")
	}
	emit(1)
	if !woken() {
		t.Fatal("reader not woken by the 4th record")
	}
}

func TestWakeupWhenRingHalfFull(t *testing.T) {
	// 160-byte records (8-byte header included) in a 4096-byte ring: the 13th makes
	// more than 2048 bytes waiting.
	emit, woken := wakeHarness(t, bpf.Options{WakeupEvery: 1000, RingBytes: 4096})
	emit(12)
	if woken() {
		t.Fatal("reader woken before the ring was half full")
	}
	emit(1)
	if !woken() {
		t.Fatal("reader not woken by a half-full ring")
	}
}

func TestSnapshotsReuseMemory(t *testing.T) {
	h := bpftest.New(t)
	hs, es, in := h.Histograms(), h.Errors(), h.InFlight()
	allocs := func() map[string]float64 {
		got := map[string]float64{}
		for name, f := range map[string]func(){
			"Histograms": func() { hs, _ = h.Probes().Histograms(hs) },
			"Errors":     func() { es, _ = h.Probes().Errors(es) },
			"InFlight":   func() { in, _ = h.Probes().InFlight(in) },
		} {
			f() // grow to size
			got[name] = testing.AllocsPerRun(10, f)
		}
		return got
	}
	add := func(from, to uint64) {
		for i := from; i < to; i++ {
			h.Enter(0xc00+i, 1, smb.Read, i)
			h.Done(0xc00+i, 1, smb.Read, i)
			h.Fail(0xc00+i, 1, smb.Create, 1000+i, statusNotFound, -2)
			h.Enter(0xc00+i, 1, smb.Write, 2000+i) // stays in flight
		}
	}
	add(0, 3)
	few := allocs()
	add(3, 300)
	many := allocs()
	if len(hs) != 300 || len(es) != 300 || len(in) != 300 {
		t.Fatalf("%d histograms, %d error counts, %d in flight; want 300 each", len(hs), len(es), len(in))
	}
	t.Logf("allocations per call: %v with 3 entries, %v with 300", few, many)
	// Per call, the map library allocates a little (cursor, errors), and a little more
	// per batch of keys read; never per entry, which would be hundreds more.
	for name := range few {
		if many[name] > few[name]+300/10 || few[name] > 8 {
			t.Errorf("%s: %v allocations per call for 3 entries, %v for 300", name, few[name], many[name])
		}
	}
	if few["InFlight"] != 0 || many["InFlight"] != 0 {
		t.Errorf("InFlight allocates: %v, %v", few["InFlight"], many["InFlight"])
	}
}

// The cgroup of a request is its issuer's, captured at enter: a request sent from a
// container's cgroup and completed elsewhere (cifsd, a kworker) names the container's.
func TestEventCarriesTheIssuersCgroup(t *testing.T) {
	h := bpftest.New(t)
	h.SetThresholds(map[uint16]time.Duration{smb.Read: 0}) // every READ is "slow"
	h.SetErrorFilter(bpf.ErrorFilter{All: true})
	n := podattrtest.New(t)
	leave := n.Join(t)
	h.Enter(0xabc, 7, smb.Read, 42)
	leave()
	h.Done(0xabc, 7, smb.Read, 42)
	h.Enter(0xabc, 7, smb.Read, 43) // from outside the container
	h.Fail(0xabc, 7, smb.Read, 43, statusNotFound, -2)

	evs := h.Events()
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2: %+v", len(evs), evs)
	}
	if evs[0].CgroupID != n.CgroupID {
		t.Errorf("cgroup %d, want the container's %d", evs[0].CgroupID, n.CgroupID)
	}
	if evs[1].CgroupID == n.CgroupID || evs[1].CgroupID == 0 {
		t.Errorf("request from outside the container: cgroup %d (container's %d)", evs[1].CgroupID, n.CgroupID)
	}
}

// With SetPerCgroup the histograms and error counts are per issuer cgroup too; without
// it (the default) requests from two cgroups share one series.
func TestPerCgroupSeries(t *testing.T) {
	h := bpftest.New(t)
	n := podattrtest.New(t)
	send := func(mid uint64) {
		leave := n.Join(t)
		h.Enter(0xabc, 7, smb.Read, mid)
		leave()
		h.Done(0xabc, 7, smb.Read, mid)
		h.Enter(0xabc, 7, smb.Create, mid+1) // from outside the container
		h.Fail(0xabc, 7, smb.Create, mid+1, statusNotFound, -2)
	}
	send(10)
	if hs := h.Histograms(); len(hs) != 2 || hs[0].CgroupID != 0 || hs[1].CgroupID != 0 {
		t.Fatalf("per-cgroup series by default: %+v", hs)
	}
	if err := h.Probes().SetPerCgroup(true); err != nil {
		t.Fatal(err)
	}
	// The error filter keeps the per-cgroup switch.
	h.SetErrorFilter(bpf.ErrorFilter{All: true})
	send(20)
	reads := map[uint64]uint64{}
	for _, s := range h.Histograms() {
		if s.Command == smb.Read {
			reads[s.CgroupID] += s.Count
		}
	}
	if len(reads) != 2 || reads[0] != 1 || reads[n.CgroupID] != 1 {
		t.Errorf("READ counts by cgroup %v, want 1 before (cgroup 0) and 1 from the container's %d", reads, n.CgroupID)
	}
	creates := 0
	for _, e := range h.Errors() {
		if e.Command == smb.Create && e.CgroupID != 0 && e.CgroupID != n.CgroupID {
			creates += int(e.Count)
		}
	}
	if creates != 1 {
		t.Errorf("%d failed CREATEs counted under the test's own cgroup, want 1: %+v", creates, h.Errors())
	}
}
