// Package ringreader drains the kernel's event ring buffer into batches of decoded
// events. Reading never waits for the consumer: when every batch is still queued
// downstream the newest events are dropped and counted, so a slow consumer costs data
// it can see in the counters, never a full ring that would make the kernel drop blindly.
package ringreader

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/linuxdiag/aod/internal/event"
)

// Source is the ring buffer as the reader uses it; *ringbuf.Reader implements it.
type Source interface {
	// ReadInto fills rec, reusing its buffer; it returns os.ErrDeadlineExceeded once the
	// ring is drained after the deadline passed, and an error wrapping os.ErrClosed
	// after Close.
	ReadInto(rec *ringbuf.Record) error
	SetDeadline(t time.Time)
	// Flush makes ReadInto return what the ring holds now, then ringbuf.ErrFlushed.
	Flush() error
	AvailableBytes() int
	BufferSize() int
	Close() error
}

// DecodeFunc decodes one raw record into ev without allocating.
type DecodeFunc func(raw []byte, ev *event.Event) error

// Config sizes the reader. Zero fields take the defaults.
type Config struct {
	// BatchSize is the number of events handed downstream at once (default 512).
	BatchSize int
	// QueueLen is the number of batches that may wait downstream before the reader
	// drops (default 16).
	QueueLen int
	// FlushInterval bounds how long a decoded event waits in a partial batch, and how
	// long records the kernel wrote without waking the reader wait in the ring
	// (default 200ms).
	FlushInterval time.Duration
}

// Defaults for Config.
const (
	DefaultBatchSize = 512
	DefaultQueueLen  = 16
	// Every drain wakes the agent's reader, its consumer and the Go runtime's monitor
	// thread: a drain every 200 ms rather than 100 cost an agent under a steady trickle
	// of events about half the CPU (make bench, agent_cpu_percent_10k), and keeps
	// within the 200 ms an event may wait in user space.
	DefaultFlushInterval = 200 * time.Millisecond
)

func (c Config) withDefaults() Config {
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.QueueLen <= 0 {
		c.QueueLen = DefaultQueueLen
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	return c
}

// Batch is a set of decoded events. It belongs to the consumer from the moment it is
// received until it is passed to Release.
type Batch struct {
	Events []event.Event
}

// Stats are the reader's counters since it was created.
type Stats struct {
	Read             uint64 // records taken from the ring (decoded or not)
	DecodeErrors     uint64 // records that did not decode and were skipped
	DroppedQueueFull uint64 // decoded events dropped because downstream was full
	Delivered        uint64 // decoded events handed downstream
}

// Reader moves records from a Source into batches. Run it in one goroutine and Deliver
// (or Batches with Release) in another.
type Reader struct {
	src    Source
	decode DecodeFunc
	cfg    Config

	out  chan *Batch
	free chan *Batch

	read, decodeErrors, dropped, delivered atomic.Uint64
	lastDecodeErr                          atomic.Pointer[error]

	// closeMu makes Fill safe against Close: the ringbuf reader cannot report its fill
	// level once closed.
	closeMu sync.RWMutex
	closed  bool

	// draining is set by Drain: the next ErrFlushed means the ring is empty.
	draining atomic.Bool
}

// New returns a reader of src; nothing is read until Run.
func New(src Source, decode DecodeFunc, cfg Config) *Reader {
	cfg = cfg.withDefaults()
	r := &Reader{
		src: src, decode: decode, cfg: cfg,
		out:  make(chan *Batch, cfg.QueueLen),
		free: make(chan *Batch, cfg.QueueLen),
	}
	// QueueLen batches circulate through free and out, plus one the reader fills: the
	// reader only sends after taking a free batch, so out never has to block.
	for range cfg.QueueLen {
		r.free <- &Batch{Events: make([]event.Event, 0, cfg.BatchSize)}
	}
	return r
}

// Run reads until the source is closed, then hands over what it has, closes the
// Batches channel and returns nil. Any other read error ends it with that error.
func (r *Reader) Run() error {
	defer close(r.out)
	cur := &Batch{Events: make([]event.Event, 0, r.cfg.BatchSize)}
	var rec ringbuf.Record
	var read uint64 // published once per batch, not per event
	r.src.SetDeadline(time.Now().Add(r.cfg.FlushInterval))
	for {
		err := r.src.ReadInto(&rec)
		if err != nil {
			r.read.Add(read)
			read = 0
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				if len(cur.Events) > 0 {
					cur = r.handOff(cur)
				}
				// The next read waits in a system call: let the consumer run on this
				// thread first. Otherwise, with one processor (the agent's), the
				// runtime takes the processor from the waiting reader and wakes another
				// thread to run the consumer, and its monitor thread polls until that
				// one is done (make bench, agent_cpu_percent_10k).
				runtime.Gosched()
				r.src.SetDeadline(time.Now().Add(r.cfg.FlushInterval))
				continue
			case errors.Is(err, ringbuf.ErrFlushed):
				if len(cur.Events) > 0 {
					cur = r.handOff(cur)
				}
				if r.draining.Load() {
					return nil
				}
				continue
			case errors.Is(err, os.ErrClosed):
				if len(cur.Events) > 0 {
					r.handOff(cur)
				}
				return nil
			default:
				return err
			}
		}
		read++
		n := len(cur.Events)
		cur.Events = cur.Events[:n+1]
		if err := r.decode(rec.RawSample, &cur.Events[n]); err != nil {
			cur.Events = cur.Events[:n]
			r.decodeErrors.Add(1)
			stored := err // a copy, so that err itself does not escape on every event
			r.lastDecodeErr.Store(&stored)
			continue
		}
		if n+1 == cap(cur.Events) {
			r.read.Add(read)
			read = 0
			cur = r.handOff(cur)
		}
	}
}

// handOff queues b downstream and returns an empty batch to fill next; when no batch
// is free (downstream holds them all) it drops b's events instead and reuses b.
func (r *Reader) handOff(b *Batch) *Batch {
	select {
	case next := <-r.free:
		r.delivered.Add(uint64(len(b.Events)))
		r.out <- b
		next.Events = next.Events[:0]
		return next
	default:
		r.dropped.Add(uint64(len(b.Events)))
		b.Events = b.Events[:0]
		return b
	}
}

// Batches yields the filled batches; it is closed when Run returns. Pass every batch
// received to Release once done with it.
func (r *Reader) Batches() <-chan *Batch { return r.out }

// Release gives a batch back to the reader.
func (r *Reader) Release(b *Batch) {
	b.Events = b.Events[:0]
	select {
	case r.free <- b:
	default:
		// Not one of ours (or released twice): the pool is full, let it go.
	}
}

// Deliver calls fn with each batch's events until Run has returned and every batch is
// delivered. fn must not keep the slice.
func (r *Reader) Deliver(fn func([]event.Event)) {
	for b := range r.out {
		fn(b.Events)
		r.Release(b)
	}
}

// Drain makes Run read every record the ring holds now, hand them over and return:
// what the kernel recorded before shutdown is not lost. Close the reader after Run
// has returned.
func (r *Reader) Drain() error {
	r.draining.Store(true)
	return r.src.Flush()
}

// Close closes the source, which makes Run hand over its last events and return.
// Records still in the ring are lost: Drain first to keep them.
func (r *Reader) Close() error {
	r.closeMu.Lock()
	defer r.closeMu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	return r.src.Close()
}

// Fill returns the ring's unread bytes and its size.
func (r *Reader) Fill() (used, size int) {
	r.closeMu.RLock()
	defer r.closeMu.RUnlock()
	if r.closed {
		return 0, r.src.BufferSize()
	}
	return r.src.AvailableBytes(), r.src.BufferSize()
}

// Stats returns the counters. Read lags by at most one batch while events flow.
func (r *Reader) Stats() Stats {
	return Stats{
		Read:             r.read.Load(),
		DecodeErrors:     r.decodeErrors.Load(),
		DroppedQueueFull: r.dropped.Load(),
		Delivered:        r.delivered.Load(),
	}
}

// LastDecodeError returns the most recent decode error, for a log line next to the
// counter; nil if every record decoded.
func (r *Reader) LastDecodeError() error {
	if p := r.lastDecodeErr.Load(); p != nil {
		return *p
	}
	return nil
}
