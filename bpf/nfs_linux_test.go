//go:build linux

package bpf_test

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/bpf/bpftest"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/fixtures"
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
		if ev.Tgid != uint32(os.Getpid()) || ev.Pid != h.Tid() || ev.CommString() != h.Comm() || ev.ServerString() != "127.0.0.1" ||
			ev.CgroupID == 0 {
			t.Errorf("issuer %d/%d %q server %q, want %d/%d %q 127.0.0.1", ev.Pid, ev.Tgid, ev.CommString(), ev.ServerString(),
				h.Tid(), os.Getpid(), h.Comm())
		}
		s := nfsHist(t, h.NFSHistograms(), 6, nfs.V3Write, 0)
		if s.Count != 2 || s.Retransmissions != 2 || s.Timeouts != 1 {
			t.Errorf("WRITE histogram %+v: want 2 RPCs, 2 retransmissions, 1 timeout", s)
		}
		// An RPC completed in rpciod for another process names that process only.
		h.Stats(bpftest.RPC{Client: 6, Version: 3, Proc: 7, Latency: time.Second, Owner: 1})
		if evs := h.Events(); len(evs) != 1 || evs[0].Tgid != 1 || evs[0].Pid != 0 || evs[0].CommString() != "" || evs[0].CgroupID != 0 {
			t.Errorf("async event %+v: want tgid 1, no thread, no name", evs)
		}
	})
}

// A failed reply's NFS status (nfs_xdr_status / nfs4_xdr_status, before the RPC
// completes) is paired with the RPC by task and xid, as in the traces: NFSv3 RMDIR of
// a non-empty directory (NOTEMPTY, tk_status -39) and NFSv4 LOOKUP of a missing name
// (operation 15, NOENT, tk_status -2).
func TestNFSFailureCarriesNFSStatus(t *testing.T) {
	forEachNFSKernel(t, func(t *testing.T, h *bpftest.NFSHarness) {
		h.SetNFSErrorFilter(bpf.ErrorFilter{Statuses: []uint32{66}})
		// task:00000076@00000006 xid=0xf6b0c0e0 nfsv3 RMDIR error=-66 (NOTEMPTY), status=-39
		rmdir := bpftest.RPC{Client: 6, Version: 3, Proc: 13, Xid: 0xf6b0c0e0, Status: -39, Latency: 2736 * time.Microsecond, Transmissions: 1}
		h.XdrStatus(rmdir, 66, 0)
		h.Stats(rmdir)
		// task:00000075@00000004 xid=0xcc651803 error=-2 (ENOENT) operation=15, status=-2
		lookup := bpftest.RPC{Slot: 1, Client: 4, Version: 4, Proc: 19, Xid: 0xcc651803, Status: -2, Latency: 2960 * time.Microsecond, Transmissions: 1}
		h.XdrStatus(lookup, 2, 15)
		h.Stats(lookup)

		evs := h.Events()
		if len(evs) != 1 {
			t.Fatalf("%d events, want the tracked NOTEMPTY only: %+v", len(evs), evs)
		}
		if ev := evs[0]; ev.Kind != event.KindError || ev.Command != nfs.V3Rmdir || ev.Status != 66 || ev.Rc != -39 || ev.TreeID != 0 {
			t.Errorf("event %+v: not the RMDIR failed with NOTEMPTY", ev)
		}
		hs := h.NFSHistograms()
		nfsHist(t, hs, 6, nfs.V3Rmdir, 66)
		nfsHist(t, hs, 4, nfs.V4Lookup, 2)
		errs := h.NFSErrors()
		slices.SortFunc(errs, func(a, b bpf.ErrorSample) int { return int(a.Command) - int(b.Command) })
		want := []bpf.ErrorSample{
			{Protocol: proto.NFS, Command: nfs.V4Lookup, SessionID: 4, Status: 2, Count: 1},
			{Protocol: proto.NFS, Command: nfs.V3Rmdir, SessionID: 6, Status: 66, Count: 1},
		}
		if !slices.Equal(errs, want) {
			t.Errorf("errors %+v, want %+v", errs, want)
		}
		// With every failure tracked, the LOOKUP's event names the operation.
		h.SetNFSErrorFilter(bpf.ErrorFilter{All: true})
		h.XdrStatus(lookup, 2, 15)
		h.Stats(lookup)
		if evs := h.Events(); len(evs) != 1 || evs[0].Status != 2 || evs[0].Rc != -2 || evs[0].TreeID != 15 || evs[0].Command != nfs.V4Lookup {
			t.Errorf("events %+v: want the LOOKUP with NOENT from operation 15", evs)
		}
	})
}

// A status noted for a task whose RPC never completed with it (the reply of another
// xid, or a task at a reused address) is not given to a later RPC: a transport failure
// is counted by its errno, and the stale note is gone.
func TestNFSStaleReplyStatusIsNotPaired(t *testing.T) {
	forEachNFSKernel(t, func(t *testing.T, h *bpftest.NFSHarness) {
		h.SetNFSErrorFilter(bpf.ErrorFilter{Errnos: []int32{5}, Statuses: []uint32{10013}})
		h.XdrStatus(bpftest.RPC{Client: 4, Version: 4, Proc: 4, Xid: 0x100}, 10013, 18) // GRACE, never completed
		// The same task address, another xid, fails at the RPC level with -EIO.
		h.Stats(bpftest.RPC{Client: 4, Version: 4, Proc: 4, Xid: 0x101, Status: -5, Latency: time.Millisecond})
		// And again: the note was dropped, so nothing pairs even with the old xid.
		h.Stats(bpftest.RPC{Client: 4, Version: 4, Proc: 4, Xid: 0x100, Status: -5, Latency: time.Millisecond})
		evs := h.Events()
		if len(evs) != 2 {
			t.Fatalf("%d events, want 2: %+v", len(evs), evs)
		}
		for _, ev := range evs {
			if ev.Status != 0 || ev.Rc != -5 || ev.TreeID != 0 {
				t.Errorf("event %+v: want an RPC-level EIO without NFS status", ev)
			}
		}
		errs := h.NFSErrors()
		if eio := uint32(0xfffffffb); len(errs) != 1 || errs[0].Status != eio || errs[0].Count != 2 || nfs.Status(eio).String() != "EIO" {
			t.Errorf("errors %+v: want 2 under status -EIO (%s)", errs, nfs.Status(eio))
		}
		// A raw NFSv4 status in tk_status (the client leaves GRACE so) is the NFS
		// status even without a note.
		h.Stats(bpftest.RPC{Slot: 3, Client: 4, Version: 4, Proc: 4, Xid: 0x300, Status: -10013, Latency: time.Millisecond})
		if evs := h.Events(); len(evs) != 1 || evs[0].Status != 10013 || evs[0].Rc != -10013 {
			t.Errorf("events %+v: want the OPEN with NFS4ERR_GRACE", evs)
		}
		// A successful RPC never takes a note (the client handled the status itself).
		h.XdrStatus(bpftest.RPC{Slot: 2, Client: 4, Version: 4, Proc: 4, Xid: 0x200}, 10013, 18)
		h.Stats(bpftest.RPC{Slot: 2, Client: 4, Version: 4, Proc: 4, Xid: 0x200, Latency: time.Millisecond})
		if hs := h.NFSHistograms(); len(hs) != 3 {
			t.Errorf("histograms %+v: want the EIO, the GRACE and the success", hs)
		}
	})
}

// An RPC that fails before it has a request slot (rpc_call_rpcerror without tk_rqstp)
// never reaches rpc_stats_latency: it is measured from the task's start there. With a
// request, rpc_call_rpcerror leaves it to rpc_stats_latency, so it counts once.
func TestNFSErrorWithoutRequest(t *testing.T) {
	forEachNFSKernel(t, func(t *testing.T, h *bpftest.NFSHarness) {
		h.SetNFSErrorFilter(bpf.ErrorFilter{Errnos: []int32{110}})
		withRequest := bpftest.RPC{Client: 5, Version: 3, Proc: 1, Status: -110, StartNs: h.Ago(time.Second)}
		h.RPCError(withRequest)
		if hs, evs := h.NFSHistograms(), h.Events(); len(hs) != 0 || len(evs) != 0 {
			t.Fatalf("with a request: histograms %+v events %+v, want none (rpc_stats_latency counts it)", hs, evs)
		}
		noRequest := withRequest
		noRequest.NoRequest = true
		noRequest.StartNs = h.Ago(50 * time.Millisecond)
		h.RPCError(noRequest)
		after := h.Now()
		evs := h.Events()
		if len(evs) != 1 {
			t.Fatalf("%d events, want 1", len(evs))
		}
		ev := evs[0]
		lat := ev.EndNs - ev.StartNs
		if ev.Rc != -110 || ev.Command != nfs.V3GetAttr || lat < uint64(50*time.Millisecond) || ev.EndNs > after ||
			ev.StartNs != noRequest.StartNs {
			t.Errorf("event %+v: want GETATTR ETIMEDOUT started at %d", ev, noRequest.StartNs)
		}
		s := nfsHist(t, h.NFSHistograms(), 5, nfs.V3GetAttr, uint32(0xffffff92))
		if s.Count != 1 || s.SumNs != lat {
			t.Errorf("histogram %+v: want the one %d ns ETIMEDOUT", s, lat)
		}
	})
}

// NFS losses land in the counters the SMB programs use: a full ring, a full histogram
// map, a full error map.
func TestNFSLossesAreCounted(t *testing.T) {
	h := bpftest.NewNFS(t, "6.12", bpf.Options{RingBytes: uint32(os.Getpagesize())},
		bpf.NFSOptions{HistogramEntries: 2, ErrorEntries: 2})
	h.SetNFSErrorFilter(bpf.ErrorFilter{All: true})
	const rpcs = 100
	for i := range rpcs {
		h.Stats(bpftest.RPC{Client: uint32(i % 3), Version: 4, Proc: 1, Status: -5, Latency: time.Millisecond})
	}
	c := h.Counters()
	if c.RingReserveFailures == 0 || c.RingReserveFailures+c.EventsEmitted != rpcs {
		t.Errorf("counters %+v: want a full ring, and every RPC emitted or lost", c)
	}
	if c.HistogramMapFull != rpcs/3 || c.ErrorMapFull != rpcs/3 {
		t.Errorf("histogram map full %d, error map full %d: want %d each (client 2 has no room)",
			c.HistogramMapFull, c.ErrorMapFull, rpcs/3)
	}
}

// readV4Order returns the NFSv4 per-op names of a mountstats file, in index order.
func readV4Order(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	inV4, inOps := false, false
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && f[0] == "device":
			inV4 = slices.Contains(f, "nfs4")
			inOps = false
		case inV4 && strings.TrimSpace(line) == "per-op statistics":
			inOps = true
		case inV4 && inOps && len(f) > 0:
			order = append(order, strings.TrimSuffix(f[0], ":"))
		}
	}
	return order
}

// The NFSv4 client procedure index is the kernel's: 6.1 and 6.12 number them as the
// table does, 7.3 inserted ZERO_RANGE. With 7.3's order (its mountstats) set, its
// indexes are recorded as the same procedures.
func TestNFSv4ProcedureOrderPerKernel(t *testing.T) {
	for _, k := range []string{"6.1", "6.12"} {
		order := readV4Order(t, fixtures.Path("kernel-"+k+"/nfs/mountstats.after"))
		for i, name := range order {
			if code := nfs.V4Code(name); int(code) != i {
				t.Errorf("%s: index %d is %s, code %d", k, i, name, code)
			}
		}
	}
	order := readV4Order(t, fixtures.Path("kernel-7.3/nfs/mountstats.after"))
	codes := nfs.Canonical(order)
	h := bpftest.NewNFS(t, "6.12", bpf.Options{}, bpf.NFSOptions{})
	if err := h.NFS().SetV4Procedures(codes); err != nil {
		t.Fatal(err)
	}
	idx := slices.Index(order, "LAYOUTSTATS")
	for _, i := range []int{slices.Index(order, "DEALLOCATE"), slices.Index(order, "ZERO_RANGE"), idx, len(order) - 1, len(order)} {
		h.Stats(bpftest.RPC{Client: 1, Version: 4, Proc: uint32(i), Latency: time.Millisecond})
	}
	var got []string
	for _, s := range h.NFSHistograms() {
		got = append(got, nfs.Command(s.Command).String())
	}
	slices.Sort(got)
	want := []string{"NFSPROC4_CLNT_DEALLOCATE", "NFSPROC4_CLNT_LAYOUTSTATS", "NFSPROC4_CLNT_OFFLOAD_STATUS", "NFSPROC4_CLNT_ZERO_RANGE", "NFS_PROC_OTHER"}
	if idx != 58 || !slices.Equal(got, want) {
		t.Errorf("7.3 LAYOUTSTATS at %d; recorded %v, want %v", idx, got, want)
	}
}

// Bad settings are refused, naming the value.
func TestNFSSettingsAreChecked(t *testing.T) {
	h := bpftest.NewNFS(t, "6.1", bpf.Options{}, bpf.NFSOptions{})
	if err := h.NFS().SetV4Procedures(make([]uint16, nfs.V3Base+1)); err == nil {
		t.Error("97 NFSv4 procedures accepted")
	}
	var th [proto.MaxCommands]bpf.Threshold
	th[nfs.V4Open] = bpf.Threshold{Tracked: true, Latency: -time.Second}
	if err := h.NFS().SetThresholds(&th); err == nil || !strings.Contains(err.Error(), "NFSPROC4_CLNT_OPEN") {
		t.Errorf("negative threshold: %v", err)
	}
	if err := h.NFS().SetErrorFilter(bpf.ErrorFilter{Errnos: []int32{-5}}); err == nil {
		t.Error("errno -5 accepted")
	}
}

// A transport's connect to the NFS port is a connection event (-EINPROGRESS, how a
// TCP connect starts, included), a failed one a connection error. How each connection
// ends is reported once, from the first of the disconnect tracepoints it fires: lost
// when the server closed it (a forced disconnect first, then the client's autoclose) or
// the client closed it with requests still awaiting replies; closed after an idle close
// (the autoclose first, with no request waiting, then the forced disconnect TCP_CLOSE
// brings). The transport's next connect is a reconnect after a loss, a connect after an
// idle close; the end is the transport's own, a connect uses it up, and a new transport
// with the same id starts without it. Other RPC
// clients' transports (rpcbind on 111) are not reported.
func TestNFSConnectEvents(t *testing.T) {
	forEachNFSKernel(t, func(t *testing.T, h *bpftest.NFSHarness) {
		x := bpftest.RPC{XprtID: 3, Server: "127.0.0.1"}
		other := x
		other.XprtID = 5
		rpcbind := x
		rpcbind.Port, rpcbind.XprtID = 111, 4
		const inProgress, refused = -115, -111
		type want struct {
			kind event.Kind
			xprt uint64
			rc   int32
		}
		var wants []want
		expect := func(kind event.Kind, r bpftest.RPC, rc int32) {
			wants = append(wants, want{kind, uint64(r.XprtID), rc})
		}
		connect := func(r bpftest.RPC, rc int32, kind event.Kind) {
			h.SocketConnect(r, rc)
			expect(kind, r, rc)
		}
		connect(x, inProgress, event.KindConnect)
		connect(x, refused, event.KindConnectError)
		// The server closes the connection.
		h.Disconnect(x, true, false)
		expect(event.KindLost, x, 0)
		h.Disconnect(x, false, false)
		connect(other, 0, event.KindConnect) // another transport's end is not this one's
		connect(x, inProgress, event.KindReconnect)
		connect(x, 0, event.KindConnect) // the reconnect used the end up
		// The client closes an idle connection.
		h.Disconnect(x, false, false)
		expect(event.KindClosed, x, 0)
		h.Disconnect(x, true, false)
		connect(x, inProgress, event.KindConnect)
		// The client gives up on a connection with requests awaiting replies.
		h.Disconnect(x, false, true)
		expect(event.KindLost, x, 0)
		h.Disconnect(x, true, false)
		connect(x, 0, event.KindReconnect)
		// A failed connect after a loss is a failed connect.
		h.Disconnect(x, true, false)
		expect(event.KindLost, x, 0)
		connect(x, refused, event.KindConnectError)
		// A transport lost and destroyed: a new one with its id starts afresh.
		h.Disconnect(x, true, false)
		expect(event.KindLost, x, 0)
		h.CreateTransport(x)
		connect(x, inProgress, event.KindConnect)
		h.Disconnect(rpcbind, true, false)
		h.SocketConnect(rpcbind, 0)
		evs := h.Events()
		if len(evs) != len(wants) {
			t.Fatalf("%d events, want %d: %+v", len(evs), len(wants), evs)
		}
		for i, w := range wants {
			ev := evs[i]
			if ev.Protocol != proto.NFS || ev.Kind != w.kind || ev.Rc != w.rc || ev.ConnID != w.xprt ||
				ev.ServerString() != "127.0.0.1" || ev.StartNs != ev.EndNs || ev.Pid != h.Tid() {
				t.Errorf("event %d %+v: want %v rc %d on transport %d to 127.0.0.1", i, ev, w.kind, w.rc, w.xprt)
			}
		}
	})
}
