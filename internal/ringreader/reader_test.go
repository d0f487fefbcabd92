package ringreader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/proto"
)

// fakeRing is a Source fed by the test. When its queue is empty it reports the
// deadline as passed (as the real ring does once the deadline is behind it), or blocks
// until the next push when blocking is set.
type fakeRing struct {
	mu        sync.Mutex
	cond      *sync.Cond
	queue     [][]byte
	closed    bool
	flushed   bool
	blocking  bool
	deadlines int
	failWith  error
}

func newFakeRing() *fakeRing {
	f := &fakeRing{}
	f.cond = sync.NewCond(&f.mu)
	return f
}

func (f *fakeRing) push(recs ...[]byte) {
	f.mu.Lock()
	f.queue = append(f.queue, recs...)
	f.mu.Unlock()
	f.cond.Broadcast()
}

func (f *fakeRing) ReadInto(rec *ringbuf.Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		if f.failWith != nil {
			return f.failWith
		}
		if len(f.queue) > 0 {
			rec.RawSample = append(rec.RawSample[:0], f.queue[0]...)
			f.queue = f.queue[1:]
			return nil
		}
		if f.closed {
			return fmt.Errorf("ringbuffer: %w", os.ErrClosed)
		}
		if f.flushed {
			f.flushed = false
			return ringbuf.ErrFlushed
		}
		if !f.blocking {
			f.deadlines++
			f.blocking = true // report the deadline once, then wait for data
			return os.ErrDeadlineExceeded
		}
		f.cond.Wait()
	}
}

func (f *fakeRing) SetDeadline(time.Time) {}
func (f *fakeRing) AvailableBytes() int   { f.mu.Lock(); defer f.mu.Unlock(); return 16 * len(f.queue) }
func (f *fakeRing) Flush() error {
	f.mu.Lock()
	f.flushed = true
	f.mu.Unlock()
	f.cond.Broadcast()
	return nil
}
func (f *fakeRing) BufferSize() int { return 4096 }
func (f *fakeRing) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.cond.Broadcast()
	return nil
}

// record encodes a test record: mid and command, the two fields the tests check.
func record(mid uint64, cmd uint16) []byte {
	b := make([]byte, 10)
	binary.LittleEndian.PutUint64(b, mid)
	binary.LittleEndian.PutUint16(b[8:], cmd)
	return b
}

var errShort = errors.New("short record")

func decodeTest(raw []byte, ev *event.Event) error {
	if len(raw) != 10 {
		return errShort
	}
	*ev = event.Event{Protocol: proto.SMB, Kind: event.KindSlow, MessageID: binary.LittleEndian.Uint64(raw), Command: binary.LittleEndian.Uint16(raw[8:])}
	return nil
}

func TestBatchesInOrderAndFlushOnDeadline(t *testing.T) {
	ring := newFakeRing()
	r := New(ring, decodeTest, Config{BatchSize: 4, QueueLen: 2})
	for i := range 6 {
		ring.push(record(uint64(i), 8))
	}
	done := make(chan error)
	go func() { done <- r.Run() }()

	// A full batch of four, then the two left over come out at the deadline without
	// waiting for more records.
	b := <-r.Batches()
	if got := mids(b.Events); fmt.Sprint(got) != "[0 1 2 3]" {
		t.Fatalf("first batch mids %v", got)
	}
	r.Release(b)
	b = <-r.Batches()
	if got := mids(b.Events); fmt.Sprint(got) != "[4 5]" {
		t.Fatalf("tail batch mids %v", got)
	}
	r.Release(b)

	// Records arriving after the close are still handed over before Run returns.
	ring.push(record(6, 9))
	ring.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b, ok := <-r.Batches()
	if !ok || fmt.Sprint(mids(b.Events)) != "[6]" || b.Events[0].Command != 9 {
		t.Fatalf("last batch %+v ok %v", b, ok)
	}
	if _, ok := <-r.Batches(); ok {
		t.Fatal("Batches not closed after Run returned")
	}
	st := r.Stats()
	if st.Read != 7 || st.Delivered != 7 || st.DroppedQueueFull != 0 || st.DecodeErrors != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func mids(evs []event.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.MessageID
	}
	return out
}

func TestDropsAndCountsWhenDownstreamFull(t *testing.T) {
	ring := newFakeRing()
	ring.blocking = true
	r := New(ring, decodeTest, Config{BatchSize: 2, QueueLen: 2})
	// Nobody consumes: two batches fill the queue, the reader's own batch is dropped
	// each time it fills.
	for i := range 10 {
		ring.push(record(uint64(i), 8))
	}
	ring.Close()
	if err := r.Run(); err != nil {
		t.Fatal(err)
	}
	st := r.Stats()
	if st.Read != 10 || st.Delivered != 4 || st.DroppedQueueFull != 6 {
		t.Fatalf("stats %+v, want 10 read, 4 delivered, 6 dropped", st)
	}
	var got []uint64
	r.Deliver(func(evs []event.Event) { got = append(got, mids(evs)...) })
	if fmt.Sprint(got) != "[0 1 2 3]" {
		t.Fatalf("delivered %v, want the oldest four", got)
	}
}

func TestDecodeErrorsSkipped(t *testing.T) {
	ring := newFakeRing()
	ring.blocking = true
	r := New(ring, decodeTest, Config{BatchSize: 8})
	ring.push(record(1, 5), []byte{1, 2, 3}, record(2, 6))
	ring.Close()
	if err := r.Run(); err != nil {
		t.Fatal(err)
	}
	var got []uint64
	r.Deliver(func(evs []event.Event) { got = append(got, mids(evs)...) })
	if fmt.Sprint(got) != "[1 2]" {
		t.Fatalf("delivered %v", got)
	}
	if st := r.Stats(); st.Read != 3 || st.DecodeErrors != 1 || st.Delivered != 2 {
		t.Fatalf("stats %+v", st)
	}
	if !errors.Is(r.LastDecodeError(), errShort) {
		t.Fatalf("last decode error %v", r.LastDecodeError())
	}
}

func TestRunReturnsReadErrors(t *testing.T) {
	ring := newFakeRing()
	boom := errors.New("boom")
	ring.failWith = boom
	r := New(ring, decodeTest, Config{})
	if err := r.Run(); !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want boom", err)
	}
	if _, ok := <-r.Batches(); ok {
		t.Fatal("Batches still open")
	}
}

func TestFillAfterClose(t *testing.T) {
	ring := newFakeRing()
	r := New(ring, decodeTest, Config{})
	ring.push(record(1, 1))
	if used, size := r.Fill(); used != 16 || size != 4096 {
		t.Fatalf("fill %d/%d", used, size)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if used, size := r.Fill(); used != 0 || size != 4096 {
		t.Fatalf("fill after close %d/%d", used, size)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestDrainKeepsWhatTheRingHolds stops a reader with Drain: every record still in the
// ring, read or not, is delivered before Run returns, though no deadline passed.
func TestDrainKeepsWhatTheRingHolds(t *testing.T) {
	ring := newFakeRing()
	r := New(ring, decodeTest, Config{BatchSize: 64, QueueLen: 2, FlushInterval: time.Hour})
	ring.push(record(1, 8), record(2, 8), record(3, 9))
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run() }()
	if err := r.Drain(); err != nil {
		t.Fatal(err)
	}
	var mids []uint64
	r.Deliver(func(evs []event.Event) {
		for _, e := range evs {
			mids = append(mids, e.MessageID)
		}
	})
	if err := <-runErr; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if fmt.Sprint(mids) != "[1 2 3]" {
		t.Fatalf("delivered %v, want [1 2 3]", mids)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}
