package detector

import (
	"fmt"
	"slices"

	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/proto"
)

// Errors is AODv2's error anomaly (smbiosnoop) with named rules, each counted on its
// own sliding window and cooldown. It is not safe for concurrent use.
type Errors struct {
	env   Env
	p     ErrorParams
	rules []errorRule
	stats Stats
}

type errorRule struct {
	ErrorRule
	statuses []uint32 // sorted
	errnos   []int32  // sorted
	w        window[event.Event]
	cd       cooldown
}

// NewErrors builds an error detector.
func NewErrors(p ErrorParams, env Env) (*Errors, error) {
	env, t, err := env.checked()
	if err != nil {
		return nil, err
	}
	if err := p.Validate(t); err != nil {
		return nil, err
	}
	p.MaxEvents = orDefault(p.MaxEvents, DefaultMaxEvents)
	d := &Errors{env: env, p: p, rules: make([]errorRule, len(p.Rules))}
	for i, r := range p.Rules {
		d.rules[i] = errorRule{
			ErrorRule: r,
			statuses:  sortedOrNil(r.Statuses),
			errnos:    sortedOrNil(r.Errnos),
			w:         newWindow[event.Event](p.Window, r.AcceptableCount, min(p.MaxEvents, r.AcceptableCount)),
			cd:        cooldown{period: uint64(p.Cooldown)},
		}
	}
	return d, nil
}

func sortedOrNil[T uint32 | int32](v []T) []T {
	if len(v) == 0 {
		return nil
	}
	return slices.Compact(slices.Sorted(slices.Values(v)))
}

// Stats returns the detector's counters.
func (d *Errors) Stats() Stats { return d.stats }

func (r *errorRule) match(e *event.Event) bool {
	if !r.Commands.IsEmpty() && !r.Commands.Has(e.Command) {
		return false
	}
	if r.statuses == nil && r.errnos == nil {
		return true
	}
	_, ok := slices.BinarySearch(r.statuses, e.Status)
	if !ok && r.errnos != nil {
		_, ok = slices.BinarySearch(r.errnos, -e.Rc)
	}
	return ok
}

// Process runs a batch of events through every rule and appends the anomalies emitted
// to out. Only failed requests (KindError) count. In steady state it does not allocate.
func (d *Errors) Process(batch []event.Event, out []anomaly.Anomaly) []anomaly.Anomaly {
	for i := range batch {
		e := &batch[i]
		if e.Kind != event.KindError || e.Protocol != d.env.Protocol {
			continue
		}
		d.stats.Events++
		if e.EndNs == 0 {
			d.stats.Malformed++
			continue
		}
		for j := range d.rules {
			r := &d.rules[j]
			if !r.match(e) {
				continue
			}
			if r.w.late(e.EndNs) {
				d.stats.Late++
				continue
			}
			d.stats.Counted++
			if r.w.add(e.EndNs, e) {
				out = d.detect(r, e.EndNs, out)
			}
		}
	}
	for j := range d.rules {
		d.rules[j].w.settle()
	}
	return out
}

func (d *Errors) detect(r *errorRule, t uint64, out []anomaly.Anomaly) []anomaly.Anomaly {
	emit, suppressed := r.cd.admit(t)
	if !emit {
		d.stats.Suppressed++
		r.w.reset()
		return out
	}
	d.stats.Emitted++
	n, first := r.w.count()
	events := r.w.recent(make([]event.Event, 0, min(n, d.p.MaxEvents)), endTime)
	a := d.env.newAnomaly(anomaly.TypeError, r.Name, first, events)
	a.Window = d.p.Window
	a.Count = n
	a.Limit = r.AcceptableCount
	a.Suppressed = suppressed
	a.Reason = fmt.Sprintf("%d failed %ss matching error rule %q within %v reached acceptable_count %d",
		n, proto.TableOf(d.env.Protocol).Requests, r.Name, d.p.Window, r.AcceptableCount)
	if len(a.TopStatuses) > 0 {
		a.Reason += "; most frequent " + a.TopStatuses[0].Value
	}
	r.w.reset()
	return append(out, a)
}
