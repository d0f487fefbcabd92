package upload

import "time"

// breaker pauses a destination that answers 401, 403 or 404: every bundle would
// meet the same answer until someone fixes the credentials or creates the
// container, so bundles keep their attempts and the store is not hammered. After
// the cooldown one probe goes out (half-open); its success closes the breaker, its
// failure reopens it for twice as long, up to an hour.
type breaker struct {
	openUntil time.Time
	trips     int  // consecutive; 0: closed
	probing   bool // half-open: the one probe is out
}

// allow says whether an upload may start now, and marks it as the probe when the
// breaker is half-open.
func (b *breaker) allow(now time.Time) bool {
	switch {
	case b.trips == 0:
		return true
	case now.Before(b.openUntil) || b.probing:
		return false
	}
	b.probing = true
	return true
}

func (b *breaker) success() { b.trips, b.probing = 0, false }

// abandon ends a probe that neither proved nor disproved the destination.
func (b *breaker) abandon() { b.probing = false }

// trip opens the breaker and returns until when.
func (b *breaker) trip(now time.Time, cooldown time.Duration) time.Time {
	b.trips++
	b.probing = false
	d := cooldown
	for i := 1; i < b.trips && d < maxCooldown; i++ {
		d *= 2
	}
	b.openUntil = now.Add(min(d, maxCooldown))
	return b.openUntil
}
