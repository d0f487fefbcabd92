package upload

import (
	"cmp"
	"slices"
	"time"
)

// Item is one bundle at one destination, as `aod upload status` shows it.
type Item struct {
	Bundle      string    `json:"bundle"`
	Destination string    `json:"destination"`
	State       State     `json:"state"`
	Attempts    int       `json:"attempts,omitempty"`
	Bytes       int64     `json:"bytes,omitempty"`
	Object      string    `json:"object,omitempty"`
	URL         string    `json:"url,omitempty"` // once uploaded
	Outcome     string    `json:"outcome,omitempty"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	Reason      string    `json:"reason,omitempty"` // of the last failure
	Error       string    `json:"error,omitempty"`
	Since       time.Time `json:"since"` // of the state
}

// DestinationStatus is a destination's circuit breaker.
type DestinationStatus struct {
	Name string `json:"name"`
	// PausedUntil is set while the breaker is open (after 401/403/404).
	PausedUntil time.Time `json:"paused_until,omitzero"`
	Trips       int       `json:"trips,omitempty"` // consecutive
}

// Status is the upload queue: every bundle on disk at every destination, oldest
// first, and the destinations.
type Status struct {
	Items        []Item              `json:"items"`
	Destinations []DestinationStatus `json:"destinations"`
}

// Status returns the queue.
func (u *Uploader) Status() Status {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := time.Now()
	var s Status
	for _, e := range u.entries {
		it := Item{Bundle: e.Bundle, Destination: e.Dest, State: e.State, Attempts: e.Attempts, Bytes: e.Bytes,
			Object: e.Key, Outcome: e.Outcome, Reason: e.Reason, Error: e.Error, Since: e.At}
		if e.running {
			it.State = StateInProgress
		}
		if e.State == StateUploaded {
			it.URL = u.dests[e.Dest].URL(e.Key)
		}
		if !e.State.Final() && !e.running {
			it.NextAttempt = e.next
			if b := u.breakers[e.Dest]; b.openUntil.After(it.NextAttempt) {
				it.NextAttempt = b.openUntil
			}
			if it.NextAttempt.Before(now) {
				it.NextAttempt = time.Time{}
			}
		}
		s.Items = append(s.Items, it)
	}
	slices.SortFunc(s.Items, func(a, b Item) int {
		return cmp.Or(cmp.Compare(a.Bundle, b.Bundle), cmp.Compare(a.Destination, b.Destination))
	})
	for _, n := range u.names {
		b := u.breakers[n]
		ds := DestinationStatus{Name: n, Trips: b.trips}
		if b.openUntil.After(now) {
			ds.PausedUntil = b.openUntil
		}
		s.Destinations = append(s.Destinations, ds)
	}
	return s
}
