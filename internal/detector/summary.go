package detector

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/smb"
)

// Protocol is the protocol every detector in this package reports.
const Protocol = "smb"

// topN is the length of each "top" list on an anomaly.
const topN = 5

func isRequest(k event.Kind) bool { return k == event.KindSlow || k == event.KindError }

// newAnomaly fills what every anomaly has from its triggering events; the detector
// adds its rule, counts and reason.
func (env *Env) newAnomaly(typ, rule string, first uint64, events []event.Event) anomaly.Anomaly {
	firstTime := env.Clock.Time(first)
	a := anomaly.Anomaly{
		Protocol:   Protocol,
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
	var commands, shares, processes, statuses tally
	for i := range events {
		e := &events[i]
		if !isRequest(e.Kind) {
			continue
		}
		a.MaxLatency = max(a.MaxLatency, e.Latency())
		commands.add(commandName(e.Command))
		shares.add(env.shareName(e.SessionID, e.TreeID))
		processes.add(fmt.Sprintf("%s[%d]", e.CommString(), e.Tgid))
		if st := statusName(e); st != "" {
			statuses.add(st)
		}
	}
	a.TopCommands = commands.top()
	a.TopShares = shares.top()
	a.TopProcesses = processes.top()
	a.TopStatuses = statuses.top()
	return a
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

// commandName names a command code, or says it is unknown.
func commandName(code uint16) string {
	if n := smb.CommandName(code); n != "" {
		return n
	}
	return fmt.Sprintf("SMB2 command %d", code)
}

// statusName names how a request failed: its NTSTATUS, or its errno when the kernel
// gave no status; "" for a request that did not fail.
func statusName(e *event.Event) string {
	switch {
	case e.Status != 0:
		if n := smb.StatusName(e.Status); n != "" {
			return n
		}
		return fmt.Sprintf("NTSTATUS 0x%08X", e.Status)
	case e.Rc < 0:
		if n := smb.ErrnoName(-e.Rc); n != "" {
			return n
		}
		return fmt.Sprintf("errno %d", -e.Rc)
	}
	return ""
}
