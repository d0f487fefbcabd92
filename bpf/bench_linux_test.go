//go:build linux

package bpf_test

import (
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/bpf/bpftest"
	"github.com/linuxdiag/aod/bpf/internal/probeaccess"
	"github.com/linuxdiag/aod/bpf/internal/testprog"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/smb"
)

// BenchmarkEnterDonePair measures what the kernel spends per request on the hot path:
// smb3_cmd_enter, then smb3_cmd_done with no event due (the common case). The
// kernel-ns/pair figure comes from the kernel's own BPF run-time statistics
// (Probes.ProgramStats), so the test-run syscalls around the programs (ns/op) are not
// part of it; it does include the statistics' own cost per run, measured on an empty
// program (empty-ns), which net-ns/pair subtracts.
func BenchmarkEnterDonePair(b *testing.B) {
	benchPair(b, false)
}

// BenchmarkEnterFailPair is BenchmarkEnterDonePair for a failed request, completed by
// smb3_cmd_err in the task that sent it (an untracked status, no event): the path that
// also looks for the requests chained behind it in a compound (none here, the worst
// case: every mid of the window is searched).
func BenchmarkEnterFailPair(b *testing.B) {
	benchPair(b, true)
}

func benchPair(b *testing.B, failed bool) {
	h := bpftest.New(b)
	empty := testprog.Loaded(b, nil).Empty
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		b.Skipf("BPF run-time statistics unavailable: %v", err)
	}
	defer stats.Close()

	in := probeaccess.Of(h.Probes())
	completion, name := in.CmdDone, "aod_cmd_done"
	// smb3_cmd_enter/done(tid, sesid, cmd, mid); smb3_cmd_err adds (status, rc).
	enterCtx := []uint64{7, 0xabc, uint64(smb.Read), 0}
	doneCtx := enterCtx
	if failed {
		completion, name = in.CmdErr, "aod_cmd_err"
		rc := -int64(unix.ENODATA) // the kernel widens the int with sign extension
		doneCtx = []uint64{7, 0xabc, uint64(smb.Read), 0, statusEOF, uint64(rc)}
	}
	runTime := func() (total [3]time.Duration, runs [3]uint64) {
		ps, err := h.Probes().ProgramStats()
		if err != nil {
			b.Fatal(err)
		}
		es, err := empty.Stats()
		if err != nil {
			b.Fatal(err)
		}
		for i, st := range []*ebpf.ProgramStats{ps["aod_cmd_enter"], ps[name], es} {
			total[i], runs[i] = st.Runtime, st.RunCount
		}
		return total, runs
	}
	// The programs are run directly, not through the harness's methods: the test
	// bookkeeping those do between runs (t.Helper unwinds the stack) evicts enough of
	// the cache to add tens of ns to the programs' own run time.
	runs := []struct {
		prog *ebpf.Program
		opts *ebpf.RunOptions
	}{
		{in.CmdEnter, &ebpf.RunOptions{Context: enterCtx}},
		{completion, &ebpf.RunOptions{Context: doneCtx}},
		{empty, &ebpf.RunOptions{Context: enterCtx}},
	}
	t0, n0 := runTime()
	b.ResetTimer()
	for i := range b.N {
		enterCtx[3], doneCtx[3] = uint64(i), uint64(i)
		for _, r := range runs {
			if _, err := r.prog.Run(r.opts); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	t1, n1 := runTime()
	var perRun [3]float64
	for i := range perRun {
		if n1[i]-n0[i] != uint64(b.N) {
			b.Fatalf("statistics counted %d runs of program %d, want %d", n1[i]-n0[i], i, b.N)
		}
		perRun[i] = float64(t1[i]-t0[i]) / float64(b.N)
	}
	b.ReportMetric(perRun[0], "enter-ns")
	b.ReportMetric(perRun[1], "done-ns")
	b.ReportMetric(perRun[2], "empty-ns")
	b.ReportMetric(perRun[0]+perRun[1], "kernel-ns/pair")
	b.ReportMetric(perRun[0]+perRun[1]-2*perRun[2], "net-ns/pair")
	if c := h.Counters(); c.Orphans != 0 || c.EventsFiltered != uint64(b.N) {
		b.Fatalf("counters %+v: not the paired, filtered path", c)
	}
}

// BenchmarkRingDrain measures reading events out of the ring into Go: ReadInto with a
// reused record, then DecodeEvent. A test-only program fills the production ring
// (timer stopped); allocs/op is per event.
func BenchmarkRingDrain(b *testing.B) {
	const ringBytes = 16 << 20
	h := bpftest.NewWithOptions(b, bpf.Options{RingBytes: ringBytes})
	fill := testprog.Loaded(b, h.Ring()).Fill
	rd, err := h.Probes().NewReader()
	if err != nil {
		b.Fatal(err)
	}
	defer rd.Close()
	const maxChunk = ringBytes / (bpf.EventSize + 8) * 9 / 10 // records carry an 8-byte header

	var (
		rec ringbuf.Record
		ev  event.Event
	)
	b.ResetTimer()
	for remaining := b.N; remaining > 0; {
		chunk := min(remaining, maxChunk)
		b.StopTimer()
		n, err := fill.Run(&ebpf.RunOptions{Context: []uint64{uint64(chunk)}})
		if err != nil || int(n) != chunk {
			b.Fatalf("filled %d of %d records: %v", n, chunk, err)
		}
		// The fill did not wake the reader: a past deadline makes it read what is there.
		rd.SetDeadline(time.Now())
		b.StartTimer()
		for range chunk {
			if err := rd.ReadInto(&rec); err != nil {
				b.Fatal(err)
			}
			if err := bpf.DecodeEvent(rec.RawSample, &ev); err != nil {
				b.Fatal(err)
			}
		}
		remaining -= chunk
	}
	b.StopTimer()
	if ev.Kind != event.KindSlow || ev.Command != smb.Read {
		b.Fatalf("last event %+v is not what the fill wrote", ev)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkNFSRPC measures what the kernel spends per NFS RPC on the hot path: one
// rpc_stats_latency run for a successful RPC with no event due (the common case),
// reading the task, client, procedure and request through the CO-RE relocated
// pointers of a real kernel layout (6.12). Figures as in BenchmarkEnterDonePair, whose
// kernel-ns/pair is the SMB request's cost to compare with: an NFS RPC takes one
// program run, an SMB request two.
func BenchmarkNFSRPC(b *testing.B) {
	h := bpftest.NewNFS(b, "6.12", bpf.Options{}, bpf.NFSOptions{})
	empty := testprog.Loaded(b, nil).Empty
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		b.Skipf("BPF run-time statistics unavailable: %v", err)
	}
	defer stats.Close()
	// Lay the RPC out once, then run the program directly (see BenchmarkEnterDonePair).
	h.Stats(bpftest.RPC{Client: 6, Version: 3, Proc: 4, Xid: 0x6eb0c0e0, Latency: 3251 * time.Microsecond, Transmissions: 1})
	prog := probeaccess.OfNFS(h.NFS()).RPCStats
	opts := &ebpf.RunOptions{Context: []uint64{h.TaskAddr(0), 0, 0, uint64(3251 * time.Microsecond)}}
	runTime := func() (total [2]time.Duration, runs [2]uint64) {
		ps, err := h.NFS().ProgramStats()
		if err != nil {
			b.Fatal(err)
		}
		es, err := empty.Stats()
		if err != nil {
			b.Fatal(err)
		}
		for i, st := range []*ebpf.ProgramStats{ps["aod_rpc_stats"], es} {
			total[i], runs[i] = st.Runtime, st.RunCount
		}
		return total, runs
	}
	t0, n0 := runTime()
	b.ResetTimer()
	for range b.N {
		for _, p := range []*ebpf.Program{prog, empty} {
			if _, err := p.Run(opts); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	t1, n1 := runTime()
	var perRun [2]float64
	for i := range perRun {
		if n1[i]-n0[i] != uint64(b.N) {
			b.Fatalf("statistics counted %d runs of program %d, want %d", n1[i]-n0[i], i, b.N)
		}
		perRun[i] = float64(t1[i]-t0[i]) / float64(b.N)
	}
	b.ReportMetric(perRun[0], "kernel-ns/rpc")
	b.ReportMetric(perRun[1], "empty-ns")
	b.ReportMetric(perRun[0]-perRun[1], "net-ns/rpc")
	if c := h.Counters(); c.EventsFiltered != uint64(b.N)+1 || c.EventsEmitted != 0 {
		b.Fatalf("counters %+v: not the measured, filtered path", c)
	}
}
