package anomalypdata

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/linuxdiag/aod/internal/errno"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/otelconv"
	"github.com/linuxdiag/aod/internal/podattr"
	"github.com/linuxdiag/aod/internal/proto"
)

// An event line is one JSON object per triggering event, keyed like the receiver's
// event log records (internal/otelconv: aod.event.kind, smb.command, error.type, ...)
// plus KeyTime, the record's timestamp. The bundle's events.jsonl and the anomaly
// span's AttrEvents hold the same lines, so an event reads the same in the logs, on
// the span and in the bundle.

// KeyTime is when the event happened: a request's completion or a connection event,
// RFC 3339 UTC with nanoseconds. It is the log record's timestamp.
const KeyTime = "time"

// MaxEventsBytes bounds AttrEvents. Trace backends cap attribute sizes; at the
// detectors' default of 128 events a line averages well under this budget's share.
const MaxEventsBytes = 64 << 10

// kinds inverts event.Kind.String, the receiver's aod.event.kind attribute.
var kinds = func() map[string]event.Kind {
	m := make(map[string]event.Kind)
	for k := event.KindSlow; k <= event.KindLast; k++ {
		m[k.String()] = k
	}
	return m
}()

// KindByName reads an aod.event.kind value.
func KindByName(name string) (event.Kind, bool) {
	k, ok := kinds[name]
	return k, ok
}

// AppendEvent appends e as one event line, without the newline; w names the
// workload of its cgroup (anomaly.Anomaly.Workloads), if known. at converts the
// event's timestamps to wall-clock time (anomaly.Anomaly.EventTime).
func AppendEvent(dst []byte, e *event.Event, w podattr.Workload, at func(ns uint64) time.Time) []byte {
	k := &proto.TableOf(e.Protocol).Keys
	o := object{dst: append(dst, '{')}
	o.time(KeyTime, at(e.EndNs))
	o.str(otelconv.AttrProtocol, e.Protocol.String())
	o.str(otelconv.AttrEventKind, e.Kind.String())
	switch e.Kind {
	case event.KindSlow, event.KindError:
		o.str(k.Command, e.Cmd().String())
		// A failure whose start the kernel never saw has no latency, not a zero one.
		if e.StartNs != 0 && e.StartNs < e.EndNs {
			o.time(k.OpStartTime, at(e.StartNs))
			o.key(k.OpDuration)
			o.dst = strconv.AppendFloat(o.dst, e.Latency().Seconds(), 'f', -1, 64)
		}
		if e.Kind == event.KindError {
			o.str(otelconv.AttrErrorType, e.Stat().String())
			o.int(k.Status, int64(e.Status))
			o.int(k.Rc, int64(e.Rc))
		}
		o.hex(k.SessionID, e.SessionID)
		o.hex(k.TreeID, uint64(e.TreeID))
		o.key(k.MessageID)
		o.dst = strconv.AppendUint(o.dst, e.MessageID, 10)
		if e.Pid != 0 {
			o.int(otelconv.AttrPid, int64(e.Tgid))
			o.int(otelconv.AttrTid, int64(e.Pid))
			o.str(otelconv.AttrComm, e.CommString())
		}
		if e.CgroupID != 0 {
			o.hex(podattr.KeyCgroupID, e.CgroupID)
			w.Attributes(o.str)
		}
		if e.Protocol == proto.IO {
			if p := e.ServerString(); p != "" {
				o.str(otelconv.AttrFilePath, p)
			}
		}
	default:
		if e.Kind == event.KindConnectError {
			o.int(k.Rc, int64(e.Rc))
			if name := errno.Name(-e.Rc); name != "" {
				o.str(otelconv.AttrErrorType, name)
			}
		}
		if s := e.ServerString(); s != "" {
			o.str(otelconv.AttrServer, s)
		}
		o.hex(k.ConnID, e.ConnID)
	}
	return append(o.dst, '}')
}

// object writes the members of one JSON object.
type object struct{ dst []byte }

func (o *object) key(k string) {
	if o.dst[len(o.dst)-1] != '{' {
		o.dst = append(o.dst, ',')
	}
	o.dst = append(o.dst, '"')
	o.dst = append(o.dst, k...)
	o.dst = append(o.dst, '"', ':')
}

func (o *object) str(k, v string) {
	o.key(k)
	b, _ := json.Marshal(v) // a string always marshals
	o.dst = append(o.dst, b...)
}

// time writes t as RFC 3339 UTC, which needs no escaping.
func (o *object) time(k string, t time.Time) {
	o.key(k)
	o.dst = append(o.dst, '"')
	o.dst = t.UTC().AppendFormat(o.dst, time.RFC3339Nano)
	o.dst = append(o.dst, '"')
}

func (o *object) int(k string, v int64) {
	o.key(k)
	o.dst = strconv.AppendInt(o.dst, v, 10)
}

// hex writes an id the way the receiver and the kernel's DebugData print it: "0x1f".
func (o *object) hex(k string, v uint64) {
	o.key(k)
	o.dst = append(o.dst, `"0x`...)
	o.dst = strconv.AppendUint(o.dst, v, 16)
	o.dst = append(o.dst, '"')
}

// ParseEvent reads one event line back, with the workload it names. Its timestamps
// come back as Unix nanoseconds (an anomaly.Anomaly.EventTimeOffset of 0). Keys it does
// not know are ignored, so lines from a newer aod still read.
func ParseEvent(line []byte) (event.Event, podattr.Workload, error) {
	var e event.Event
	var w podattr.Workload
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return e, w, fmt.Errorf("not a JSON object: %w", err)
	}
	if dec.More() {
		return e, w, errors.New("text after the JSON object")
	}
	r := reader{m: m}
	pname := r.str(otelconv.AttrProtocol, true)
	p, ok := proto.ParseProtocol(pname)
	if !ok && r.err == nil {
		r.fail(otelconv.AttrProtocol, "unknown protocol %q", pname)
	}
	e.Protocol = p
	k := &proto.TableOf(p).Keys
	name := r.str(otelconv.AttrEventKind, true)
	kind, ok := KindByName(name)
	if !ok {
		r.fail(otelconv.AttrEventKind, "unknown kind %q", name)
	}
	e.Kind = kind
	e.EndNs = r.time(KeyTime, true)
	switch kind {
	case event.KindSlow, event.KindError:
		e.Command = r.command(p, k.Command)
		if start := r.time(k.OpStartTime, false); start != 0 {
			e.StartNs = start
		} else if d, ok := r.float(k.OpDuration); ok {
			if ns := math.Round(d * 1e9); ns > 0 && ns < float64(e.EndNs) {
				e.StartNs = e.EndNs - uint64(ns)
			}
		}
		e.Status = uint32(r.uint(k.Status, math.MaxUint32))
		e.Rc = int32(r.int(k.Rc, math.MinInt32, math.MaxInt32))
		e.SessionID = r.hex(k.SessionID, math.MaxUint64)
		e.TreeID = uint32(r.hex(k.TreeID, math.MaxUint32))
		e.MessageID = r.uint(k.MessageID, math.MaxUint64)
		e.Tgid = uint32(r.uint(otelconv.AttrPid, math.MaxUint32))
		e.Pid = uint32(r.uint(otelconv.AttrTid, math.MaxUint32))
		copy(e.Comm[:len(e.Comm)-1], r.str(otelconv.AttrComm, false))
		if e.CgroupID = r.hex(podattr.KeyCgroupID, math.MaxUint64); e.CgroupID != 0 {
			w = podattr.FromAttributes(func(key string) string { return r.str(key, false) })
		}
		if p == proto.IO {
			copy(e.Server[:len(e.Server)-1], r.str(otelconv.AttrFilePath, false))
		}
	default:
		e.Rc = int32(r.int(k.Rc, math.MinInt32, math.MaxInt32))
		e.ConnID = r.hex(k.ConnID, math.MaxUint64)
		copy(e.Server[:len(e.Server)-1], r.str(otelconv.AttrServer, false))
	}
	if r.err != nil {
		return event.Event{}, podattr.Workload{}, r.err
	}
	if e.StartNs > e.EndNs {
		return event.Event{}, podattr.Workload{}, fmt.Errorf("%s is after %s", k.OpStartTime, KeyTime)
	}
	return e, w, nil
}

// reader takes typed values out of a decoded line, keeping the first error.
type reader struct {
	m   map[string]any
	err error
}

func (r *reader) fail(key, format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: "+format, append([]any{key}, args...)...)
	}
}

func (r *reader) str(key string, required bool) string {
	v, ok := r.m[key]
	if !ok {
		if required {
			r.fail(key, "missing")
		}
		return ""
	}
	s, ok := v.(string)
	if !ok {
		r.fail(key, "want a string, got %v", v)
	}
	return s
}

// time reads an RFC 3339 time as Unix nanoseconds; times before 1970 are refused.
func (r *reader) time(key string, required bool) uint64 {
	s := r.str(key, required)
	if s == "" {
		if _, present := r.m[key]; present {
			r.fail(key, "want an RFC 3339 time, got an empty string")
		}
		return 0
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Before(time.Unix(0, 1)) || t.After(time.Unix(0, math.MaxInt64)) {
		r.fail(key, "want an RFC 3339 time after 1970, got %q", s)
		return 0
	}
	return uint64(t.UnixNano())
}

func (r *reader) number(key string) (json.Number, bool) {
	v, ok := r.m[key]
	if !ok {
		return "", false
	}
	n, ok := v.(json.Number)
	if !ok {
		r.fail(key, "want a number, got %v", v)
	}
	return n, ok
}

func (r *reader) uint(key string, limit uint64) uint64 {
	n, ok := r.number(key)
	if !ok {
		return 0
	}
	u, err := strconv.ParseUint(n.String(), 10, 64)
	if err != nil || u > limit {
		r.fail(key, "want an integer from 0 to %d, got %s", limit, n)
	}
	return u
}

func (r *reader) int(key string, lo, hi int64) int64 {
	n, ok := r.number(key)
	if !ok {
		return 0
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil || i < lo || i > hi {
		r.fail(key, "want an integer from %d to %d, got %s", lo, hi, n)
	}
	return i
}

func (r *reader) float(key string) (float64, bool) {
	n, ok := r.number(key)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	if err != nil {
		r.fail(key, "want a number of seconds, got %s", n)
		return 0, false
	}
	return f, true
}

func (r *reader) hex(key string, limit uint64) uint64 {
	s := r.str(key, false)
	if s == "" {
		return 0
	}
	h, ok := strings.CutPrefix(s, "0x")
	u, err := strconv.ParseUint(h, 16, 64)
	if !ok || err != nil || u > limit {
		r.fail(key, "want a hex id 0x... up to %#x, got %q", limit, s)
	}
	return u
}

func (r *reader) command(p proto.Protocol, key string) uint16 {
	name := r.str(key, true)
	if c, ok := proto.ParseCommand(p, name); ok {
		return c.Code
	}
	r.fail(key, "unknown %s %q", proto.TableOf(p).CommandNoun, name)
	return 0
}

// encodeEvents writes events as event lines for AttrEvents. When they exceed
// MaxEventsBytes the oldest are left out: the ones nearest the detection matter
// most, and the span's AttrEventCount still says how many there were.
func encodeEvents(events []event.Event, workloads map[uint64]podattr.Workload, at func(ns uint64) time.Time) string {
	lines := make([][]byte, 0, len(events))
	size := 0
	var buf []byte
	for i := len(events) - 1; i >= 0; i-- {
		buf = AppendEvent(buf[:0], &events[i], workloads[events[i].CgroupID], at)
		if size+len(buf)+1 > MaxEventsBytes {
			break
		}
		size += len(buf) + 1
		lines = append(lines, bytes.Clone(buf))
	}
	var b strings.Builder
	b.Grow(size)
	for i := len(lines) - 1; i >= 0; i-- {
		b.Write(lines[i])
		b.WriteByte('\n')
	}
	return b.String()
}

// maxErrors bounds the decoding problems DecodeEvents describes one by one.
const maxErrors = 3

// DecodeEvents reads the event lines of an AttrEvents value, and the workloads they
// name by cgroup id. Lines that do not decode are left out and described in the
// error; the others are returned.
func DecodeEvents(s string) ([]event.Event, map[uint64]podattr.Workload, error) {
	var (
		out       []event.Event
		workloads map[uint64]podattr.Workload
		errs      []error
		bad       int
	)
	for n, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		e, w, err := ParseEvent([]byte(line))
		if err != nil {
			if bad++; bad <= maxErrors {
				errs = append(errs, fmt.Errorf("event line %d: %w", n+1, err))
			}
			continue
		}
		out = append(out, e)
		if !w.IsZero() {
			if workloads == nil {
				workloads = map[uint64]podattr.Workload{}
			}
			workloads[e.CgroupID] = w
		}
	}
	if bad > maxErrors {
		errs = append(errs, fmt.Errorf("%d more event lines did not decode", bad-maxErrors))
	}
	return out, workloads, errors.Join(errs...)
}
