package detector

import (
	"fmt"
	"maps"
	"math/bits"
	"slices"

	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/proto"
)

// Errors is AODv2's error anomaly (smbiosnoop) with named rules, each counted on its
// own sliding window and cooldown. It is not safe for concurrent use.
type Errors struct {
	env    Env
	p      ErrorParams
	rules  []errorRule
	groups []ruleGroup
	stats  Stats
}

type errorRule struct {
	ErrorRule
	w  window[event.Event]
	cd cooldown
}

// ruleGroup indexes up to 64 consecutive rules by the statuses and errnos they name,
// so that a failure costs one search of each table, not one per rule.
type ruleGroup struct {
	first    int      // index of the group's first rule; bit j is rule first+j
	statuses []uint32 // sorted, distinct: every status a rule of the group names
	byStatus []uint64 // the rules naming statuses[i]
	errnos   []int32  // the same for errnos
	byErrno  []uint64
	every    uint64 // rules naming neither: every failure is theirs
}

func newRuleGroup(first int, rules []ErrorRule) ruleGroup {
	g := ruleGroup{first: first}
	statuses, errnos := map[uint32]uint64{}, map[int32]uint64{}
	for j, r := range rules {
		bit := uint64(1) << j
		if len(r.Statuses) == 0 && len(r.Errnos) == 0 {
			g.every |= bit
		}
		for _, v := range r.Statuses {
			statuses[v] |= bit
		}
		for _, v := range r.Errnos {
			errnos[v] |= bit
		}
	}
	g.statuses, g.byStatus = sortedIndex(statuses)
	g.errnos, g.byErrno = sortedIndex(errnos)
	return g
}

func sortedIndex[T uint32 | int32](m map[T]uint64) ([]T, []uint64) {
	keys := slices.Sorted(maps.Keys(m))
	bits := make([]uint64, len(keys))
	for i, k := range keys {
		bits[i] = m[k]
	}
	return keys, bits
}

// candidates returns the group's rules whose statuses or errnos take a failure,
// before their commands are looked at.
func (g *ruleGroup) candidates(status uint32, errno int32) uint64 {
	set := g.every
	if i, ok := slices.BinarySearch(g.statuses, status); ok {
		set |= g.byStatus[i]
	}
	if i, ok := slices.BinarySearch(g.errnos, errno); ok {
		set |= g.byErrno[i]
	}
	return set
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
			w:         newWindow[event.Event](p.Window, r.AcceptableCount, min(p.MaxEvents, r.AcceptableCount)),
			cd:        cooldown{period: uint64(p.Cooldown)},
		}
	}
	for first := 0; first < len(p.Rules); first += 64 {
		d.groups = append(d.groups, newRuleGroup(first, p.Rules[first:min(first+64, len(p.Rules))]))
	}
	return d, nil
}

// Stats returns the detector's counters.
func (d *Errors) Stats() Stats { return d.stats }

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
		for g := range d.groups {
			group := &d.groups[g]
			// The rules in order, as the anomalies of one event come out in it.
			for set := group.candidates(e.Status, -e.Rc); set != 0; set &= set - 1 {
				r := &d.rules[group.first+bits.TrailingZeros64(set)]
				if !r.Commands.IsEmpty() && !r.Commands.Has(e.Command) {
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
