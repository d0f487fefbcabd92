package ringreader

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/proto"
)

// memRing serves n copies of one kernel record the way ringbuf.Reader does (a copy
// into the caller's reused buffer), then reports the ring closed. Every wakeEvery
// records it yields the processor, as the real reader does when it has drained what
// one kernel wake-up announced, so that on one core the consumer gets its turn.
type memRing struct {
	raw       []byte
	left      int
	wakeEvery int
}

func (m *memRing) ReadInto(rec *ringbuf.Record) error {
	if m.left == 0 {
		return fmt.Errorf("ringbuffer: %w", os.ErrClosed)
	}
	if m.left%m.wakeEvery == 0 {
		runtime.Gosched()
	}
	m.left--
	rec.RawSample = append(rec.RawSample[:0], m.raw...)
	return nil
}

func (m *memRing) SetDeadline(time.Time) {}
func (m *memRing) AvailableBytes() int   { return m.left * len(m.raw) }
func (m *memRing) Flush() error          { return nil }
func (m *memRing) BufferSize() int       { return 1 << 23 }
func (m *memRing) Close() error          { return nil }

// BenchmarkDecodeAndBatch measures the user-space cost per event: read from the ring
// into reused memory, decode with bpf.DecodeEvent, batch, hand downstream. Run with
// -cpu 1 for the one-core figure.
func BenchmarkDecodeAndBatch(b *testing.B) {
	var comm [16]byte
	copy(comm[:], "dd")
	raw := bpf.EncodeEvent(nil, &event.Event{Protocol: proto.SMB,
		Kind: event.KindSlow, Command: 8, Pid: 4242, Tgid: 4240, Comm: comm,
		SessionID: 0x936c11ff, TreeID: 0x53dfe4a, MessageID: 362,
		StartNs: 14_201_968_000, EndNs: 14_314_130_000,
	})
	src := &memRing{raw: raw, left: b.N, wakeEvery: DefaultBatchSize}
	r := New(src, bpf.DecodeEvent, Config{})
	done := make(chan uint64)
	go func() {
		var n uint64
		r.Deliver(func(evs []event.Event) { n += uint64(len(evs)) })
		done <- n
	}()
	b.ReportAllocs()
	b.ResetTimer()
	if err := r.Run(); err != nil {
		b.Fatal(err)
	}
	delivered := <-done
	b.StopTimer()
	st := r.Stats()
	if st.Read != uint64(b.N) || delivered+st.DroppedQueueFull != uint64(b.N) {
		b.Fatalf("read %d, delivered %d + dropped %d, want %d", st.Read, delivered, st.DroppedQueueFull, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(st.DroppedQueueFull), "dropped")
}

func TestReadingDoesNotAllocatePerEvent(t *testing.T) {
	raw := bpf.EncodeEvent(nil, &event.Event{Protocol: proto.SMB, Kind: event.KindError, Command: 5, Status: 0xc0000034})
	const events = 100_000
	readers := make(chan *Reader, 2) // AllocsPerRun runs once to warm up, then once measured
	for range cap(readers) {
		readers <- New(&memRing{raw: raw, left: events, wakeEvery: events + 1}, bpf.DecodeEvent, Config{})
	}
	allocs := testing.AllocsPerRun(1, func() {
		if err := (<-readers).Run(); err != nil {
			t.Fatal(err)
		}
	})
	// A handful at start and at the end of the run, none per event.
	if allocs > 10 {
		t.Fatalf("%v allocations reading %d events", allocs, events)
	}
}
