package detector

import (
	"math"
	"time"
)

// window counts qualifying events over a sliding time window exactly: it keeps the
// times of the last limit qualifying events, so "limit events within the window" is
// true exactly when the oldest of them is less than one window older than the newest.
// That fires no later than any tumbling batch of the same length would (AODv2's
// batches), at the event that completes the count, with O(1) work and no allocation.
//
// Alongside the times it keeps up to keep items (the triggering events) for the
// anomaly. Times are CLOCK_MONOTONIC nanoseconds (the events' own clock), so the
// window does not depend on when user space gets around to reading a batch.
//
// add only records where an item is; settle copies the ones still kept. A batch in
// which every event qualifies then copies at most keep events, not all of them.
type window[T any] struct {
	span   uint64   // window length in ns
	times  []uint64 // ring of the last len(times) qualifying times; len = limit
	n      int      // filled entries of times
	next   int      // next write position in times
	latest uint64   // newest time seen (events may arrive slightly out of order)

	refs      []*T // ring of the most recent items, len = keep: &items[i] once settled
	items     []T  // the window's own copies, slot for slot with refs
	ni        int
	inext     int
	unsettled int // newest slots of refs that still point at the caller's items
}

func newWindow[T any](span time.Duration, limit, keep int) window[T] {
	return window[T]{
		span:  uint64(span),
		times: make([]uint64, limit),
		refs:  make([]*T, keep),
		items: make([]T, keep),
	}
}

// late reports whether t is too old to share a window with the newest event seen.
// Such an event cannot complete a count any more; callers drop and count it.
func (w *window[T]) late(t uint64) bool {
	return t < w.latest && w.latest-t >= w.span
}

// add records a qualifying event at time t and reports whether the window now holds
// limit events. It keeps item itself, not a copy, until settle: item must not change
// before then. It never allocates.
func (w *window[T]) add(t uint64, item *T) bool {
	if t > w.latest {
		w.latest = t
	}
	w.times[w.next] = t
	w.next++
	if w.next == len(w.times) {
		w.next = 0
	}
	if w.n < len(w.times) {
		w.n++
	}
	if len(w.refs) > 0 {
		w.refs[w.inext] = item
		w.inext++
		if w.inext == len(w.refs) {
			w.inext = 0
		}
		if w.ni < len(w.refs) {
			w.ni++
		}
		if w.unsettled < len(w.refs) {
			w.unsettled++
		}
	}
	if w.n < len(w.times) {
		return false
	}
	// Full ring: w.next now points at the oldest of the last limit times.
	return w.latest-w.times[w.next] < w.span
}

// settle copies the items added since the last settle that are still kept into the
// window's own memory. Call it before the caller changes or reuses them (at the end of
// a batch).
func (w *window[T]) settle() {
	j := w.inext
	for range w.unsettled {
		if j--; j < 0 {
			j += len(w.refs)
		}
		w.items[j] = *w.refs[j]
		w.refs[j] = &w.items[j]
	}
	w.unsettled = 0
}

// inWindow reports whether time t lies within one window of the newest event.
func (w *window[T]) inWindow(t uint64) bool {
	return t >= w.latest || w.latest-t < w.span
}

// count returns how many recorded times lie within the window, and the oldest of them
// (MaxUint64 when there are none).
func (w *window[T]) count() (n int, oldest uint64) {
	oldest = math.MaxUint64
	for i := 0; i < w.n; i++ {
		t := w.times[i]
		if w.inWindow(t) {
			n++
			if t < oldest {
				oldest = t
			}
		}
	}
	return n, oldest
}

// recent appends the kept items whose time (given by at) lies within the window,
// oldest first.
func (w *window[T]) recent(dst []T, at func(*T) uint64) []T {
	start := w.inext - w.ni
	if start < 0 {
		start += len(w.refs)
	}
	for i := 0; i < w.ni; i++ {
		j := start + i
		if j >= len(w.refs) {
			j -= len(w.refs)
		}
		if w.inWindow(at(w.refs[j])) {
			dst = append(dst, *w.refs[j])
		}
	}
	return dst
}

// reset forgets the counted events after a detection, so a repeat needs a fresh count
// of limit events, as a new AODv2 batch would. The newest time is kept so that late
// stragglers of the fired burst are still recognised as late.
func (w *window[T]) reset() {
	w.n, w.next, w.ni, w.inext, w.unsettled = 0, 0, 0, 0, 0
}

// cooldown turns repeated detections of one anomaly into one emission per period and
// a count of the repeats it suppressed in between.
type cooldown struct {
	period     uint64 // ns; 0 emits every detection
	last       uint64 // time of the last emission
	emitted    bool
	suppressed int
}

// admit is called for each detection at time t. It reports whether to emit it and, if
// so, how many detections were suppressed since the previous emission.
func (c *cooldown) admit(t uint64) (emit bool, suppressed int) {
	if c.emitted && c.period > 0 && t >= c.last && t-c.last < c.period {
		c.suppressed++
		return false, 0
	}
	suppressed = c.suppressed
	c.emitted, c.last, c.suppressed = true, t, 0
	return true, suppressed
}
