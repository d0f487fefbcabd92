package actions

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/smb"
	"github.com/linuxdiag/aod/internal/smbevent"
	"github.com/linuxdiag/aod/receiver/wallclock"
)

// eventJSON is one event as a line of events.jsonl or inflight.jsonl: names for
// people, codes for tools, ids in hex as the kernel's debug output shows them.
type eventJSON struct {
	Time       string   `json:"time"` // wall-clock time of the request's start (or of a connection event)
	Kind       string   `json:"kind"`
	Command    string   `json:"command,omitempty"`
	CmdCode    *uint16  `json:"command_code,omitempty"`
	Status     string   `json:"status,omitempty"`
	StatusCode string   `json:"status_code,omitempty"`
	Errno      string   `json:"errno,omitempty"`
	Rc         int32    `json:"rc,omitempty"`
	LatencyMs  *float64 `json:"latency_ms,omitempty"`
	AgeMs      *float64 `json:"age_ms,omitempty"` // in-flight requests: time outstanding so far
	Pid        uint32   `json:"pid,omitempty"`
	Tgid       uint32   `json:"tgid,omitempty"`
	Comm       string   `json:"comm,omitempty"`
	SessionID  string   `json:"session_id,omitempty"`
	TreeID     string   `json:"tree_id,omitempty"`
	MessageID  uint64   `json:"mid,omitempty"`
	ConnID     uint64   `json:"conn_id,omitempty"`
	Server     string   `json:"server,omitempty"`
	StartNs    uint64   `json:"start_ns,omitempty"`
	EndNs      uint64   `json:"end_ns,omitempty"`
}

func ms(d time.Duration) *float64 {
	v := float64(d) / float64(time.Millisecond)
	return &v
}

// clock converts the kernel's CLOCK_MONOTONIC nanoseconds to wall-clock time.
type clock struct {
	conv *wallclock.Converter
}

func nowClock() clock { return clock{conv: wallclock.New(time.Hour)} }

func (c clock) at(ns uint64) time.Time { return time.Unix(0, c.conv.UnixNano(ns)) }

func encodeEvent(e *smbevent.Event, c clock) eventJSON {
	j := eventJSON{Kind: e.Kind.String(), Pid: e.Pid, Tgid: e.Tgid, Comm: e.CommString(),
		MessageID: e.MessageID, ConnID: e.ConnID, Server: e.ServerString(), StartNs: e.StartNs, EndNs: e.EndNs, Rc: e.Rc}
	ts := e.StartNs
	switch e.Kind {
	case smbevent.KindSlow, smbevent.KindError:
		code := e.Command
		j.CmdCode, j.Command, j.LatencyMs = &code, smb.CommandName(code), ms(e.Latency())
	default:
		ts = e.EndNs
	}
	j.Time = c.at(ts).UTC().Format(time.RFC3339Nano)
	if e.Status != 0 {
		j.Status, j.StatusCode = smb.StatusName(e.Status), fmt.Sprintf("0x%08x", e.Status)
	}
	if e.Rc < 0 {
		j.Errno = smb.ErrnoName(-e.Rc)
	}
	if e.SessionID != 0 {
		j.SessionID = fmt.Sprintf("0x%x", e.SessionID)
	}
	if e.TreeID != 0 {
		j.TreeID = fmt.Sprintf("0x%x", e.TreeID)
	}
	return j
}

// encodeInflight describes a request still outstanding in the kernel.
func encodeInflight(r *bpf.InFlightRequest, c clock) eventJSON {
	code := r.Command
	j := eventJSON{Time: c.at(r.StartNs).UTC().Format(time.RFC3339Nano), Kind: "inflight",
		Command: smb.CommandName(code), CmdCode: &code, AgeMs: ms(r.Age), Pid: r.Pid, Tgid: r.Tgid,
		Comm: unix.ByteSliceToString(r.Comm[:]), MessageID: r.MessageID, StartNs: r.StartNs}
	if r.SessionID != 0 {
		j.SessionID = fmt.Sprintf("0x%x", r.SessionID)
	}
	if r.TreeID != 0 {
		j.TreeID = fmt.Sprintf("0x%x", r.TreeID)
	}
	return j
}

// writeLines writes one JSON object per line.
func writeLines[T any](w io.Writer, items []T, encode func(*T) eventJSON) error {
	enc := json.NewEncoder(w)
	for i := range items {
		if err := enc.Encode(encode(&items[i])); err != nil {
			return err
		}
	}
	return nil
}

// eventsAction writes the anomaly's triggering events.
func eventsAction() Action {
	return Action{Name: NameEvents, Run: func(_ context.Context, env *Env, out *Output, r *Result) error {
		r.Source = "anomaly"
		if env.Anomaly == nil || len(env.Anomaly.Events) == 0 {
			// An on-demand snapshot, or an anomaly read back from a span (the
			// collector), which carries counts but not the events themselves.
			return Skip("the anomaly carries no triggering events")
		}
		w, err := out.Create("events.jsonl")
		if err != nil {
			return err
		}
		c := nowClock()
		return writeLines(w, env.Anomaly.Events, func(e *smbevent.Event) eventJSON { return encodeEvent(e, c) })
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
		c := nowClock()
		return writeLines(w, reqs, func(r *bpf.InFlightRequest) eventJSON { return encodeInflight(r, c) })
	}}
}
