package detector

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/proto"
)

// Latency rules, as anomaly.Anomaly.Rule names them.
const (
	RuleCount   = "count"   // acceptable_count requests at or over threshold in the window
	RuleCeiling = "ceiling" // one request at or over the ceiling
)

// untracked is the threshold of a command the detector ignores.
const untracked = math.MaxUint64

// Latency is AODv2's latency anomaly (smbslower) on a sliding window. It is not safe
// for concurrent use.
type Latency struct {
	env       Env
	table     *proto.Table
	p         LatencyParams
	threshold [proto.MaxCommands]uint64 // ns by command code; untracked for ignored commands
	ceiling   uint64                    // ns; MaxUint64 when disabled
	w         window[event.Event]
	cd        cooldown
	stats     Stats
}

// Stats counts what a detector saw, for its own health metrics.
type Stats struct {
	Events     uint64 // events offered that this detector looks at
	Counted    uint64 // events that counted towards a rule
	Late       uint64 // counted events older than the window when they arrived: dropped
	Malformed  uint64 // events without a usable time: dropped
	Emitted    uint64 // anomalies emitted
	Suppressed uint64 // detections suppressed by the cooldown
}

// NewLatency builds a latency detector.
func NewLatency(p LatencyParams, env Env) (*Latency, error) {
	env, t, err := env.checked()
	if err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p.MaxEvents = orDefault(p.MaxEvents, DefaultMaxEvents)
	l := &Latency{
		env:     env,
		table:   t,
		p:       p,
		ceiling: math.MaxUint64,
		w:       newWindow[event.Event](p.Window, p.AcceptableCount, min(p.MaxEvents, p.AcceptableCount)),
		cd:      cooldown{period: uint64(p.Cooldown)},
	}
	if p.Ceiling > 0 {
		l.ceiling = uint64(p.Ceiling)
	}
	for code, c := range p.Commands {
		l.threshold[code] = untracked
		if c.Tracked {
			l.threshold[code] = uint64(c.Threshold)
		}
	}
	return l, nil
}

// Stats returns the detector's counters.
func (l *Latency) Stats() Stats { return l.stats }

// Process runs a batch of events through the detector and appends the anomalies it
// emits to out. Request events (slow and failed) of tracked commands count when their
// latency reaches their command's threshold; an anomaly is emitted at the event that
// completes the count, or at any tracked request reaching the ceiling. In steady
// state it does not allocate.
func (l *Latency) Process(batch []event.Event, out []anomaly.Anomaly) []anomaly.Anomaly {
	for i := range batch {
		e := &batch[i]
		if !isRequest(e.Kind) || e.Protocol != l.env.Protocol || e.Command >= proto.MaxCommands {
			continue
		}
		th := l.threshold[e.Command]
		if th == untracked {
			continue
		}
		l.stats.Events++
		if e.StartNs == 0 || e.EndNs < e.StartNs {
			// No start time (the kernel lost the request's start): no latency to judge.
			l.stats.Malformed++
			continue
		}
		lat := e.EndNs - e.StartNs
		counted, reached := false, false
		if lat >= th {
			if l.w.late(e.EndNs) {
				l.stats.Late++
			} else {
				l.stats.Counted++
				counted, reached = true, l.w.add(e.EndNs, e)
			}
		}
		if reached || lat >= l.ceiling {
			out = l.detect(e, reached, counted, out)
		}
	}
	l.w.settle()
	return out
}

// detect handles one detection at event e.
func (l *Latency) detect(e *event.Event, reached, counted bool, out []anomaly.Anomaly) []anomaly.Anomaly {
	emit, suppressed := l.cd.admit(e.EndNs)
	if !emit {
		l.stats.Suppressed++
		l.w.reset()
		return out
	}
	l.stats.Emitted++
	n, first := l.w.count()
	events := l.w.recent(make([]event.Event, 0, min(n+1, l.p.MaxEvents)), endTime)
	if !counted { // a ceiling hit under its command's threshold is still the trigger
		n++
		first = min(first, e.EndNs)
		events = append(events, *e)
	}
	if len(events) > l.p.MaxEvents {
		events = events[len(events)-l.p.MaxEvents:]
	}
	rule := RuleCeiling
	if reached {
		rule = RuleCount
	}
	a := l.env.newAnomaly(anomaly.TypeLatency, rule, first, events)
	a.Window = l.p.Window
	a.Count = n
	a.Suppressed = suppressed
	a.Threshold = l.lowestThreshold(events)
	if reached {
		a.Limit = l.p.AcceptableCount
		a.Reason = fmt.Sprintf("%d %ss at or over their latency threshold (%s) within %v reached acceptable_count %d; slowest %v",
			n, l.table.Requests, l.thresholdList(events), l.p.Window, l.p.AcceptableCount, a.MaxLatency)
	} else {
		a.Threshold = l.p.Ceiling
		a.Reason = fmt.Sprintf("%s request took %v, at or over the %v ceiling",
			e.Cmd(), time.Duration(e.EndNs-e.StartNs), l.p.Ceiling)
	}
	l.w.reset()
	return append(out, a)
}

func endTime(e *event.Event) uint64 { return e.EndNs }

// lowestThreshold is the threshold a span can show for a count over several commands:
// the lowest one any triggering request was judged against.
func (l *Latency) lowestThreshold(events []event.Event) time.Duration {
	lowest := uint64(untracked)
	for i := range events {
		if c := events[i].Command; c < proto.MaxCommands {
			lowest = min(lowest, l.threshold[c])
		}
	}
	if lowest == untracked {
		return 0
	}
	return time.Duration(lowest)
}

// thresholdList names the thresholds of the commands among events, for the reason.
func (l *Latency) thresholdList(events []event.Event) string {
	var seen proto.CommandSet
	for i := range events {
		seen = seen.With(events[i].Command)
	}
	var parts []string
	for code := range seen.All() {
		if code < proto.MaxCommands && l.p.Commands[code].Tracked {
			c := proto.Command{Protocol: l.env.Protocol, Code: code}
			parts = append(parts, fmt.Sprintf("%s >= %v", c, l.p.Commands[code].Threshold))
		}
	}
	return strings.Join(parts, ", ")
}
