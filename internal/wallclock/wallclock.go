// Package wallclock converts the kernel's CLOCK_MONOTONIC timestamps (bpf_ktime_get_ns)
// to wall-clock time. The offset between the two clocks is measured directly, not
// derived from the boot time: CLOCK_MONOTONIC stops during suspend and wall time is
// stepped by NTP, so the offset moves and is measured again periodically.
package wallclock

import (
	"sync/atomic"
	"time"
)

// samples is how many readings Refresh takes; it keeps the tightest one, so a
// preemption between two clock reads does not skew the offset.
const samples = 5

// Converter maps monotonic nanoseconds to wall-clock time. It is safe for concurrent use.
type Converter struct {
	every     int64        // refresh period, ns
	offset    atomic.Int64 // CLOCK_REALTIME - CLOCK_MONOTONIC, ns
	refreshed atomic.Int64 // CLOCK_MONOTONIC at the last refresh, ns
}

// New measures the offset and returns a converter that MaybeRefresh re-measures once
// every period.
func New(every time.Duration) *Converter {
	c := &Converter{every: int64(every)}
	c.Refresh()
	return c
}

// Refresh measures the offset now.
func (c *Converter) Refresh() {
	best, bestWindow, at := int64(0), int64(-1), int64(0)
	for range samples {
		m1 := monotonic()
		r := realtime()
		m2 := monotonic()
		if w := m2 - m1; bestWindow < 0 || w < bestWindow {
			best, bestWindow, at = r-(m1+(m2-m1)/2), w, m2
		}
	}
	c.offset.Store(best)
	c.refreshed.Store(at)
}

// MaybeRefresh re-measures the offset if the last measurement is older than the
// period. Call it once per batch, not per event.
func (c *Converter) MaybeRefresh() {
	if monotonic()-c.refreshed.Load() >= c.every {
		c.Refresh()
	}
}

// UnixNano returns the wall-clock time, in Unix nanoseconds, of a CLOCK_MONOTONIC
// reading in nanoseconds.
func (c *Converter) UnixNano(mono uint64) int64 { return int64(mono) + c.offset.Load() }

// Time is UnixNano as a time.Time.
func (c *Converter) Time(mono uint64) time.Time { return time.Unix(0, c.UnixNano(mono)) }

// Monotonic returns the current CLOCK_MONOTONIC reading in nanoseconds, the clock of
// the kernel's event timestamps.
func Monotonic() uint64 { return uint64(monotonic()) }

// BootTime returns when the system booted, by the wall clock now: the start time that
// counters kept since boot are given (CLOCK_BOOTTIME counts suspend, unlike the
// monotonic clock).
func BootTime() time.Time { return time.Unix(0, realtime()-boottime()) }
