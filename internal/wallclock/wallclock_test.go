//go:build linux

package wallclock

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestConvertsMonotonicToWallClock(t *testing.T) {
	c := New(time.Minute)
	before := time.Now()
	mono := Monotonic()
	after := time.Now()
	got := c.Time(mono)
	// The offset is measured to well under a millisecond; allow that much either side.
	if got.Before(before.Add(-time.Millisecond)) || got.After(after.Add(time.Millisecond)) {
		t.Fatalf("converted %v, taken between %v and %v", got, before, after)
	}
	// An event 1.5 s earlier on the monotonic clock is 1.5 s earlier on the wall clock.
	if d := c.Time(mono).Sub(c.Time(mono - 1_500_000_000)); d != 1500*time.Millisecond {
		t.Fatalf("difference %v", d)
	}
}

func TestMaybeRefreshFollowsThePeriod(t *testing.T) {
	c := New(time.Hour)
	c.offset.Store(42) // a wrong offset that only a refresh would correct
	c.MaybeRefresh()
	if c.offset.Load() != 42 {
		t.Fatal("refreshed before the period passed")
	}
	c.every = 0
	c.MaybeRefresh()
	if c.offset.Load() == 42 {
		t.Fatal("not refreshed after the period")
	}
}

func TestBootTime(t *testing.T) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Skip(err)
	}
	// /proc/stat's btime is the kernel's own boot time in whole seconds.
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			btime, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			if d := BootTime().Sub(time.Unix(btime, 0)); d < -2*time.Second || d > 2*time.Second {
				t.Fatalf("boot time %v, /proc/stat says %v", BootTime(), time.Unix(btime, 0))
			}
			return
		}
	}
	t.Skip("no btime in /proc/stat")
}
