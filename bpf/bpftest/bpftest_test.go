package bpftest_test

import (
	"os"
	"testing"
	"time"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/bpf/bpftest"
	"github.com/linuxdiag/aod/bpf/internal/testprog"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/latencyhist"
	"github.com/linuxdiag/aod/internal/smb"
)

func TestRequestReturnsTheLatencyTheKernelMeasured(t *testing.T) {
	h := bpftest.New(t)
	h.SetThresholds(map[uint16]time.Duration{smb.Read: 0}) // every READ is an event: its own record of the latency
	latencies := []time.Duration{0, time.Microsecond, time.Millisecond, 150 * time.Millisecond, 3 * time.Second}
	got := make([]time.Duration, len(latencies))
	for i, l := range latencies {
		got[i] = h.Request(bpftest.Request{Session: 0x10, Tree: 3, Command: smb.Read, Latency: l})
	}

	evs := h.Events()
	if len(evs) != len(latencies) {
		t.Fatalf("%d events, want %d", len(evs), len(latencies))
	}
	mids := map[uint64]bool{}
	var want bpf.HistogramSample
	for i, ev := range evs {
		// The event's own start and end, taken by the programs, agree with Request.
		measured := time.Duration(ev.EndNs - ev.StartNs)
		if latencies[i] == 0 {
			measured = 0 // started "in the future": clamped
		}
		if got[i] != measured || got[i] < latencies[i] || (latencies[i] == 0) != (got[i] == 0) {
			t.Errorf("request %d of %v: Request said %v, the event %v", i, latencies[i], got[i], measured)
		}
		if ev.Kind != event.KindSlow || ev.SessionID != 0x10 || ev.TreeID != 3 || ev.Command != smb.Read ||
			ev.Pid != h.Tid() || ev.Tgid != uint32(os.Getpid()) || ev.CommString() != h.Comm() {
			t.Errorf("event %+v", ev)
		}
		if ev.MessageID < 1<<48 || mids[ev.MessageID] {
			t.Errorf("mid %d picked twice or among the small ones", ev.MessageID)
		}
		mids[ev.MessageID] = true
		if j, zero := latencyhist.BucketOf(uint64(got[i])); zero {
			want.ZeroCount++
		} else {
			want.Buckets[j]++
		}
		want.Count++
		want.SumNs += uint64(got[i])
	}
	hs := h.Histograms()
	if len(hs) != 1 || hs[0].Count != want.Count || hs[0].SumNs != want.SumNs || hs[0].ZeroCount != want.ZeroCount || hs[0].Buckets != want.Buckets {
		t.Errorf("histograms %+v, want one holding %+v", hs, want)
	}
}

func TestRequestFailsWithItsStatus(t *testing.T) {
	h := bpftest.New(t)
	h.SetErrorFilter(bpf.ErrorFilter{Statuses: []uint32{0xc0000034}})
	lat := h.Request(bpftest.Request{Session: 0x20, Tree: 4, Command: smb.Create, Mid: 9, Latency: 2 * time.Millisecond, Status: 0xc0000034, Rc: -2})
	if lat < 2*time.Millisecond {
		t.Errorf("latency %v, want at least 2ms", lat)
	}
	evs := h.Events()
	if len(evs) != 1 || evs[0].Kind != event.KindError || evs[0].Status != 0xc0000034 || evs[0].Rc != -2 ||
		evs[0].MessageID != 9 || time.Duration(evs[0].EndNs-evs[0].StartNs) != lat {
		t.Errorf("events %+v, want the failed CREATE of %v", evs, lat)
	}
	if es := h.Errors(); len(es) != 1 || es[0].Count != 1 || es[0].Status != 0xc0000034 || es[0].Command != smb.Create {
		t.Errorf("error counts %+v", es)
	}
}

func TestStartAtLeavesTheRequestInFlight(t *testing.T) {
	h := bpftest.New(t)
	h.StartAt(0x30, 5, smb.ChangeNotify, 77, h.Ago(30*time.Second))
	in := h.InFlight()
	if len(in) != 1 || in[0].MessageID != 77 || in[0].Command != smb.ChangeNotify || in[0].TreeID != 5 ||
		in[0].Pid != h.Tid() || in[0].Age < 30*time.Second {
		t.Fatalf("in flight %+v, want the 30 s old CHANGE_NOTIFY", in)
	}
	h.Done(0x30, 5, smb.ChangeNotify, 77)
	if hs := h.Histograms(); len(hs) != 1 || hs[0].SumNs < uint64(30*time.Second) {
		t.Errorf("histograms %+v, want one request of 30 s", hs)
	}
}

func TestWrapLeavesTheProbesToTheirOwner(t *testing.T) {
	bpftest.Require(t)
	p, err := bpf.Load(bpf.Options{})
	testprog.CheckLoad(t, err)
	defer p.Close()
	t.Run("wrapped", func(t *testing.T) {
		h := bpftest.Wrap(t, p)
		if h.Probes() != p {
			t.Fatal("Probes is not the wrapped probes")
		}
		h.Request(bpftest.Request{Command: smb.Write})
	})
	// The subtest ended; the probes are still open and hold its request.
	hs, err := p.Histograms(nil)
	if err != nil || len(hs) != 1 || hs[0].Count != 1 {
		t.Fatalf("after the harness: histograms %+v, %v", hs, err)
	}
}
