//go:build linux

package bpf_test

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/bpf/bpftest"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/latencyhist"
	"github.com/linuxdiag/aod/internal/nfs"
	"github.com/linuxdiag/aod/internal/proto"
)

// forEachNFSKernel runs test against the NFS programs relocated for each kernel
// layout the fixtures hold (Debian 6.1 and 6.12 differ in rpc_xprt and xdr_stream).
func forEachNFSKernel(t *testing.T, test func(t *testing.T, h *bpftest.NFSHarness)) {
	for _, k := range bpftest.NFSKernels {
		t.Run(k, func(t *testing.T) {
			test(t, bpftest.NewNFS(t, k, bpf.Options{}, bpf.NFSOptions{}))
		})
	}
}

// nfsHist returns the histogram of (client, command, status), failing if absent.
func nfsHist(t *testing.T, hs []bpf.NFSHistogramSample, client uint32, command uint16, status uint32) bpf.NFSHistogramSample {
	t.Helper()
	i := slices.IndexFunc(hs, func(s bpf.NFSHistogramSample) bool {
		return s.SessionID == uint64(client) && s.Command == command && s.Status == status
	})
	if i < 0 {
		t.Fatalf("no histogram for client %d %s status %d in %+v", client, proto.Command{Protocol: proto.NFS, Code: command}, status, hs)
	}
	return hs[i]
}

// The RPCs of the 6.12 trace (testdata/kernel-6.12/nfs/trace-rpc.txt): each is
// measured on its own procedure code and client, with the kernel's execute time; RPCs
// of other programs are not NFS and are not measured.
func TestNFSMeasuresEveryRPC(t *testing.T) {
	forEachNFSKernel(t, func(t *testing.T, h *bpftest.NFSHarness) {
		rpcs := []bpftest.RPC{
			// task:00000006@00000006 xid=0x6eb0c0e0 nfsv3 ACCESS execute=3251
			{Client: 6, Version: 3, Proc: 4, Xid: 0x6eb0c0e0, Latency: 3251 * time.Microsecond, Transmissions: 1},
			// task:00000002@00000007 xid=0x6fb0c0e0 nfsaclv3 GETACL execute=2554
			{Client: 7, Program: 100227, Version: 3, Proc: 1, Xid: 0x6fb0c0e0, Latency: 2554 * time.Microsecond, Transmissions: 1},
			// task:0000000a@00000006 nfsv3 WRITE status=3 (bytes written) execute=3549
			{Client: 6, Version: 3, Proc: 7, Xid: 0x74b0c0e0, Status: 3, Latency: 3549 * time.Microsecond, Transmissions: 1},
			// task:00000074@00000004 xid=0xcb651803 nfsv4 GETATTR execute=2151
			{Client: 4, Version: 4, Proc: 18, Xid: 0xcb651803, Latency: 2151 * time.Microsecond, Transmissions: 1},
			// not NFS: rpcbind v4 GETADDR
			{Client: 1, Program: 100000, Version: 4, Proc: 9, Latency: time.Millisecond},
		}
		for _, r := range rpcs {
			h.Stats(r)
		}
		hs := h.NFSHistograms()
		if len(hs) != 4 {
			t.Fatalf("%d histograms, want 4 (rpcbind is not NFS): %+v", len(hs), hs)
		}
		for _, want := range []struct {
			client uint32
			cmd    uint16
			lat    time.Duration
		}{
			{6, nfs.V3Access, 3251 * time.Microsecond},
			{7, nfs.ACL3GetACL, 2554 * time.Microsecond},
			{6, nfs.V3Write, 3549 * time.Microsecond},
			{4, nfs.V4GetAttr, 2151 * time.Microsecond},
		} {
			s := nfsHist(t, hs, want.client, want.cmd, 0)
			j, zero := latencyhist.BucketOf(uint64(want.lat))
			if zero || s.Count != 1 || s.Buckets[j] != 1 || s.SumNs != uint64(want.lat) || s.Retransmissions != 0 {
				t.Errorf("%s: %+v, want one RPC of %v in bucket %d", nfs.Command(want.cmd), s, want.lat, j)
			}
		}
		if errs := h.NFSErrors(); len(errs) != 0 {
			t.Errorf("errors %+v, want none", errs)
		}
		if c := h.Counters(); c.EventsFiltered != 4 || c.EventsEmitted != 0 {
			t.Errorf("counters %+v: want 4 RPCs filtered, none emitted", c)
		}
	})
}

// Latencies at and around bucket bounds land in exactly the bucket internal/latencyhist
// assigns them (the kernel gets the execute time as an argument: no clock in between).
func TestNFSHistogramBucketsAreExact(t *testing.T) {
	forEachNFSKernel(t, func(t *testing.T, h *bpftest.NFSHarness) {
		want := make(map[int]uint64)
		var zeros, sum, n uint64
		for _, k := range []int{0, 1, 40, 60, 80, latencyhist.NumBuckets - 1} {
			b := latencyhist.BoundNs(k)
			for _, ns := range []uint64{b - 1, b, b + 1} {
				h.Stats(bpftest.RPC{Client: 9, Version: 4, Proc: 1, Latency: time.Duration(ns)})
				sum += ns
				n++
				if j, zero := latencyhist.BucketOf(ns); zero {
					zeros++
				} else {
					want[j]++
				}
			}
		}
		// A negative execute time (the clock stepped) counts as 0.
		h.Stats(bpftest.RPC{Client: 9, Version: 4, Proc: 1, Latency: -time.Millisecond})
		zeros++
		n++
		s := nfsHist(t, h.NFSHistograms(), 9, nfs.V4Read, 0)
		if s.ZeroCount != zeros || s.SumNs != sum || s.Count != n {
			t.Errorf("zero %d sum %d count %d, want %d %d %d", s.ZeroCount, s.SumNs, s.Count, zeros, sum, n)
		}
		for j, n := range s.Buckets {
			if n != want[j] {
				t.Errorf("bucket %d: %d, want %d", j, n, want[j])
			}
		}
	})
}

// Only an RPC at or over its procedure's threshold crosses the ring, carrying what the
// record layout (include/aod.h) promises.
func TestNFSSlowRPCRecord(t *testing.T) {
	forEachNFSKernel(t, func(t *testing.T, h *bpftest.NFSHarness) {
		h.SetNFSThresholds(map[uint16]time.Duration{nfs.V3Write: 10 * time.Millisecond})
		fast := bpftest.RPC{Client: 6, Version: 3, Proc: 7, Xid: 0x74b0c0e0, Status: 4096, Latency: 10*time.Millisecond - 1,
			Transmissions: 1, XprtID: 3, Server: "127.0.0.1"}
		h.Stats(fast)
		slow := fast
		slow.Xid, slow.Latency, slow.Transmissions, slow.Timeouts = 0x75b0c0e0, 10*time.Millisecond, 3, 1
		before := h.Now()
		h.Stats(slow)
		after := h.Now()
		// Another procedure as slow, without a threshold.
		h.Stats(bpftest.RPC{Client: 6, Version: 3, Proc: 6, Latency: time.Second})
		evs := h.Events()
		if len(evs) != 1 {
			t.Fatalf("%d events, want the one slow WRITE: %+v", len(evs), evs)
		}
		ev := evs[0]
		xid, vers, retrans, timeouts := bpf.SplitNFSMessageID(ev.MessageID)
		if ev.Protocol != proto.NFS || ev.Kind != event.KindSlow || ev.Command != nfs.V3Write || ev.SessionID != 6 ||
			xid != 0x75b0c0e0 || vers != 3 || retrans != 2 || timeouts != 1 || ev.ConnID != 3 ||
			ev.Status != 0 || ev.Rc != 4096 || ev.TreeID != 0 {
			t.Errorf("event %+v (xid %#x v%d retrans %d timeouts %d): not the slow WRITE", ev, xid, vers, retrans, timeouts)
		}
		if ev.EndNs < before || ev.EndNs > after || ev.EndNs-ev.StartNs != uint64(10*time.Millisecond) {
			t.Errorf("end %d start %d: want end in [%d, %d] and 10 ms before it", ev.EndNs, ev.StartNs, before, after)
		}
		if ev.Tgid != uint32(os.Getpid()) || ev.Pid != h.Tid() || ev.CommString() != h.Comm() || ev.ServerString() != "127.0.0.1" {
			t.Errorf("issuer %d/%d %q server %q, want %d/%d %q 127.0.0.1", ev.Pid, ev.Tgid, ev.CommString(), ev.ServerString(),
				h.Tid(), os.Getpid(), h.Comm())
		}
		s := nfsHist(t, h.NFSHistograms(), 6, nfs.V3Write, 0)
		if s.Count != 2 || s.Retransmissions != 2 || s.Timeouts != 1 {
			t.Errorf("WRITE histogram %+v: want 2 RPCs, 2 retransmissions, 1 timeout", s)
		}
		// An RPC completed in rpciod for another process names that process only.
		h.Stats(bpftest.RPC{Client: 6, Version: 3, Proc: 7, Latency: time.Second, Owner: 1})
		if evs := h.Events(); len(evs) != 1 || evs[0].Tgid != 1 || evs[0].Pid != 0 || evs[0].CommString() != "" {
			t.Errorf("async event %+v: want tgid 1, no thread, no name", evs)
		}
	})
}
