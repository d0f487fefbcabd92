package detector

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/podattr"
)

// topN is the length of each "top" list on an anomaly.
const topN = 5

func isRequest(k event.Kind) bool { return k == event.KindSlow || k == event.KindError }

// newAnomaly fills what every anomaly has from its triggering events; the detector
// adds its rule, counts and reason.
func (env *Env) newAnomaly(typ, rule string, first uint64, events []event.Event) anomaly.Anomaly {
	firstTime := env.Clock.Time(first)
	a := anomaly.Anomaly{
		Protocol:   env.Protocol.String(),
		Type:       typ,
		Rule:       rule,
		FirstEvent: firstTime,
		DetectedAt: env.Clock.Now(),
		Events:     events,
		// The offset Clock.Time just applied, so the events can be dated later
		// without the detector's clock.
		EventTimeOffset: firstTime.UnixNano() - int64(first),
	}
	a.TraceID, a.SpanID = env.NewIDs()
	var commands, shares, processes, statuses, workloads tally
	for i := range events {
		e := &events[i]
		if !isRequest(e.Kind) {
			continue
		}
		a.MaxLatency = max(a.MaxLatency, e.Latency())
		commands.add(e.Cmd().String())
		shares.add(env.shareName(e.SessionID, e.TreeID))
		processes.add(fmt.Sprintf("%s[%d]", e.CommString(), e.Tgid))
		if w, ok := env.workload(&a, e.CgroupID); ok {
			workloads.add(w.Name())
		}
		if st := e.Failure(); st != "" {
			statuses.add(st)
		}
	}
	a.TopCommands = commands.top()
	a.TopShares = shares.top()
	a.TopProcesses = processes.top()
	a.TopStatuses = statuses.top()
	a.TopWorkloads = workloads.top()
	return a
}

// workload names a request's cgroup once per anomaly and keeps it in a.Workloads.
func (env *Env) workload(a *anomaly.Anomaly, cgroupID uint64) (podattr.Workload, bool) {
	if cgroupID == 0 || env.Workload == nil {
		return podattr.Workload{}, false
	}
	if w, ok := a.Workloads[cgroupID]; ok {
		return w, true
	}
	w, ok := env.Workload(cgroupID)
	if !ok {
		return w, false
	}
	if a.Workloads == nil {
		a.Workloads = map[uint64]podattr.Workload{}
	}
	a.Workloads[cgroupID] = w
	return w, true
}

func (env *Env) shareName(session uint64, tree uint32) string {
	if env.Share != nil {
		if s := env.Share(session, tree); s != "" {
			return s
		}
	}
	return fmt.Sprintf("session 0x%x tree 0x%x", session, tree)
}

// tally counts values in first-seen order, so ties keep a stable order.
type tally struct {
	index map[string]int
	list  []anomaly.Tally
}

func (t *tally) add(v string) {
	if t.index == nil {
		t.index = make(map[string]int)
	}
	i, ok := t.index[v]
	if !ok {
		i = len(t.list)
		t.index[v] = i
		t.list = append(t.list, anomaly.Tally{Value: v})
	}
	t.list[i].Count++
}

// top returns the topN most frequent values, most frequent first.
func (t *tally) top() []anomaly.Tally {
	slices.SortStableFunc(t.list, func(a, b anomaly.Tally) int { return cmp.Compare(b.Count, a.Count) })
	if len(t.list) > topN {
		t.list = t.list[:topN:topN]
	}
	return t.list
}
