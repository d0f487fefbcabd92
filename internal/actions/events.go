package actions

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/anomalypdata"
	"github.com/linuxdiag/aod/internal/otelconv"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/smb"
	"github.com/linuxdiag/aod/internal/wallclock"
)

// attrAge is how long an in-flight request has been outstanding, in seconds, beside
// the receiver's smb.operation.* attributes.
const attrAge = "smb.operation.age"

// clock converts the kernel's CLOCK_MONOTONIC nanoseconds to wall-clock time.
type clock struct {
	conv *wallclock.Converter
}

func nowClock() clock { return clock{conv: wallclock.New(time.Hour)} }

func (c clock) at(ns uint64) time.Time { return time.Unix(0, c.conv.UnixNano(ns)) }

// inflightJSON is one line of inflight.jsonl, keyed like the event lines: the time
// aod read the start map, and the request as far as it went.
type inflightJSON map[string]any

func encodeInflight(r *bpf.InFlightRequest, c clock, now time.Time) inflightJSON {
	j := inflightJSON{
		anomalypdata.KeyTime:       now.UTC().Format(time.RFC3339Nano),
		otelconv.AttrProtocol:      proto.SMB.String(),
		otelconv.AttrEventKind:     "inflight",
		smb.Table.Keys.Command:     smb.Command(r.Command).String(),
		smb.Table.Keys.OpStartTime: c.at(r.StartNs).UTC().Format(time.RFC3339Nano),
		attrAge:                    r.Age.Seconds(),
		smb.Table.Keys.SessionID:   fmt.Sprintf("0x%x", r.SessionID),
		smb.Table.Keys.TreeID:      fmt.Sprintf("0x%x", r.TreeID),
		smb.Table.Keys.MessageID:   r.MessageID,
	}
	if r.Pid != 0 {
		j[otelconv.AttrPid], j[otelconv.AttrTid] = r.Tgid, r.Pid
		j[otelconv.AttrComm] = unix.ByteSliceToString(r.Comm[:])
	}
	return j
}

// eventsAction writes the anomaly's triggering events, one line each in the form the
// anomaly span carries them (anomalypdata.AppendEvent).
func eventsAction() Action {
	return Action{Name: NameEvents, Run: func(_ context.Context, env *Env, out *Output, r *Result) error {
		r.Source = "anomaly"
		if env.Anomaly == nil || len(env.Anomaly.Events) == 0 {
			// An on-demand snapshot, or an anomaly whose span lost its events.
			return Skip("the anomaly carries no triggering events")
		}
		w, err := out.Create("events.jsonl")
		if err != nil {
			return err
		}
		a := env.Anomaly
		var line []byte
		for i := range a.Events {
			line = append(anomalypdata.AppendEvent(line[:0], &a.Events[i], a.Workloads[a.Events[i].CgroupID], a.EventTime), '\n')
			if _, err := w.Write(line); err != nil {
				return err
			}
		}
		return nil
	}}
}

// inflightAction writes the requests the kernel has started and not completed,
// longest outstanding (the most likely hung) first.
func inflightAction() Action {
	return Action{Name: NameInflight, Run: func(ctx context.Context, env *Env, out *Output, r *Result) error {
		r.Source = "bpf start map"
		if env.Inflight == nil {
			return Skip("the kernel probes are not loaded")
		}
		reqs, err := env.Inflight(ctx)
		if err != nil {
			return fmt.Errorf("read in-flight requests: %w", err)
		}
		slices.SortStableFunc(reqs, func(a, b bpf.InFlightRequest) int { return cmp.Compare(b.Age, a.Age) })
		w, err := out.Create("inflight.jsonl")
		if err != nil {
			return err
		}
		c, now := nowClock(), time.Now()
		enc := json.NewEncoder(w)
		for i := range reqs {
			if err := enc.Encode(encodeInflight(&reqs[i], c, now)); err != nil {
				return err
			}
		}
		return nil
	}}
}
