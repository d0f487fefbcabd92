package bpf_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/bpf/internal/testprog"
	fileio "github.com/linuxdiag/aod/internal/io"
)

// The io benchmarks run real system calls with the probe attached to sys_exit and
// report, besides the call's wall time (ns/op), the probe's own run time per
// invocation from the kernel's BPF statistics (probe-ns/exit). The statistics count
// every sys_exit on the host while the benchmark runs; the benchmark's own calls
// dominate them.

// BenchmarkIOSuccess: the fast path, a system call that succeeds (getppid).
func BenchmarkIOSuccess(b *testing.B) {
	benchIO(b, false, func(string) {
		unix.Getppid()
	})
}

// BenchmarkIONoProbe: the same call without the probe, the baseline of
// BenchmarkIOSuccess's ns/op.
func BenchmarkIONoProbe(b *testing.B) {
	for b.Loop() {
		unix.Getppid()
	}
}

// BenchmarkIOFailureOutOfScope: a failed stat of an absolute path on no mount in scope.
func BenchmarkIOFailureOutOfScope(b *testing.B) {
	benchIO(b, false, func(string) {
		var st unix.Stat_t
		if unix.Stat("/nonexistent-aod-io-bench", &st) == nil {
			b.Fatal("exists")
		}
	})
}

// BenchmarkIOFailureFDOutOfScope: a failed read on a descriptor whose mount is not
// in scope (a directory of /: EISDIR).
func BenchmarkIOFailureFDOutOfScope(b *testing.B) {
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 1)
	benchIO(b, false, func(string) {
		if _, err := unix.Read(fd, buf); err == nil {
			b.Fatal("read a directory")
		}
	})
}

// BenchmarkIOFailureCounted: a failed stat in scope, counted, not tracked.
func BenchmarkIOFailureCounted(b *testing.B) {
	benchIO(b, false, func(dir string) {
		var st unix.Stat_t
		if unix.Stat(dir+"/missing", &st) == nil {
			b.Fatal("exists")
		}
	})
}

// BenchmarkIOFailureRecorded: a failed stat in scope, counted and tracked: a ring
// record, drained meanwhile.
func BenchmarkIOFailureRecorded(b *testing.B) {
	benchIO(b, true, func(dir string) {
		var st unix.Stat_t
		if unix.Stat(dir+"/missing", &st) == nil {
			b.Fatal("exists")
		}
	})
}

func benchIO(b *testing.B, tracked bool, call func(dir string)) {
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		b.Skipf("BPF run-time statistics unavailable: %v", err)
	}
	defer stats.Close()
	p, io, dir, _ := ioProbe(b)
	if tracked {
		if err := io.SetErrorFilter(bpf.IOErrorFilter{Pairs: []bpf.IOPair{{Op: int(fileio.Stat), Errno: int32(unix.ENOENT)}}}); err != nil {
			b.Fatal(err)
		}
		r, err := p.NewReader()
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			var rec ringbuf.Record
			for {
				if err := r.ReadInto(&rec); err != nil && errors.Is(err, os.ErrClosed) {
					return
				}
			}
		}()
		defer func() { r.Close(); <-done }()
	}
	// An empty program on the same tracepoint measures what the statistics themselves
	// cost (reading the clock twice per run): net-ns/exit is the probe's own work.
	empty := testprog.Loaded(b, nil).Empty
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sys_exit", Program: empty})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	stat := func() (probe, base *ebpf.ProgramStats) {
		s, err := io.ProgramStats()
		if err != nil {
			b.Fatal(err)
		}
		e, err := empty.Stats()
		if err != nil {
			b.Fatal(err)
		}
		return s["aod_io_exit"], e
	}
	path := filepath.Clean(dir)
	p0, e0 := stat()
	b.ResetTimer()
	for range b.N {
		call(path)
	}
	b.StopTimer()
	p1, e1 := stat()
	runs, eruns := p1.RunCount-p0.RunCount, e1.RunCount-e0.RunCount
	if runs < uint64(b.N) || eruns < uint64(b.N) {
		b.Fatalf("the probe ran %d times (the empty program %d) for %d system calls", runs, eruns, b.N)
	}
	perRun := float64(p1.Runtime-p0.Runtime) / float64(runs)
	emptyRun := float64(e1.Runtime-e0.Runtime) / float64(eruns)
	b.ReportMetric(perRun, "probe-ns/exit")
	b.ReportMetric(emptyRun, "empty-ns/exit")
	b.ReportMetric(perRun-emptyRun, "net-ns/exit")
	c, err := p.Counters()
	if err != nil {
		b.Fatal(err)
	}
	if tracked && c.EventsEmitted < uint64(b.N) {
		b.Fatalf("%d records for %d tracked failures", c.EventsEmitted, b.N)
	}
}
