//go:build linux

package bpf

import (
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/internal/smb"
	"github.com/linuxdiag/aod/internal/smbevent"
)

// BenchmarkEnterDonePair measures what the kernel spends per request on the hot path:
// smb3_cmd_enter, then smb3_cmd_done with no event due (the common case). The
// kernel-ns/pair figure comes from the kernel's own BPF run-time statistics, so the
// test-run syscalls around the programs (ns/op) are not part of it; it does include
// the statistics' own cost per run, measured on an empty program (empty-ns), which
// net-ns/pair subtracts.
func BenchmarkEnterDonePair(b *testing.B) {
	p := loadProbes(b, Options{})
	tp := loadTestProgs(b, nil)
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		b.Skipf("BPF run-time statistics unavailable: %v", err)
	}
	defer stats.Close()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	progs := []*ebpf.Program{p.objs.AodCmdEnter, p.objs.AodCmdDone, tp.Empty}
	runTime := func() (total [3]time.Duration, runs [3]uint64) {
		for i, prog := range progs {
			st, err := prog.Stats()
			if err != nil {
				b.Fatal(err)
			}
			total[i], runs[i] = st.Runtime, st.RunCount
		}
		return total, runs
	}
	ctx := []uint64{7, 0xabc, uint64(smb.Read), 0}
	opts := &ebpf.RunOptions{Context: ctx}
	t0, n0 := runTime()
	b.ResetTimer()
	for i := range b.N {
		ctx[3] = uint64(i)
		for _, prog := range progs {
			if _, err := prog.Run(opts); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	t1, n1 := runTime()
	var perRun [3]float64
	for i := range progs {
		if n1[i]-n0[i] != uint64(b.N) {
			b.Fatalf("statistics counted %d runs of %v, want %d", n1[i]-n0[i], progs[i], b.N)
		}
		perRun[i] = float64(t1[i]-t0[i]) / float64(b.N)
	}
	b.ReportMetric(perRun[0], "enter-ns")
	b.ReportMetric(perRun[1], "done-ns")
	b.ReportMetric(perRun[2], "empty-ns")
	b.ReportMetric(perRun[0]+perRun[1], "kernel-ns/pair")
	b.ReportMetric(perRun[0]+perRun[1]-2*perRun[2], "net-ns/pair")
	if c, err := p.Counters(); err != nil || c.Orphans != 0 || c.EventsFiltered != uint64(b.N) {
		b.Fatalf("counters %+v, %v: not the paired, filtered path", c, err)
	}
}

// BenchmarkRingDrain measures reading events out of the ring into Go: ReadInto with a
// reused record, then DecodeEvent. A test-only program fills the production ring
// (timer stopped); allocs/op is per event.
func BenchmarkRingDrain(b *testing.B) {
	const ringBytes = 16 << 20
	p := loadProbes(b, Options{RingBytes: ringBytes})
	tp := loadTestProgs(b, p.objs.Events)
	rd, err := p.NewReader()
	if err != nil {
		b.Fatal(err)
	}
	defer rd.Close()
	const maxChunk = ringBytes / (EventSize + 8) * 9 / 10 // records carry an 8-byte header

	var (
		rec ringbuf.Record
		ev  smbevent.Event
	)
	b.ResetTimer()
	for remaining := b.N; remaining > 0; {
		chunk := min(remaining, maxChunk)
		b.StopTimer()
		n, err := tp.Fill.Run(&ebpf.RunOptions{Context: []uint64{uint64(chunk)}})
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
			if err := DecodeEvent(rec.RawSample, &ev); err != nil {
				b.Fatal(err)
			}
		}
		remaining -= chunk
	}
	b.StopTimer()
	if ev.Kind != smbevent.KindSlow || ev.Command != smb.Read {
		b.Fatalf("last event %+v is not what the fill wrote", ev)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
