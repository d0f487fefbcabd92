package anomalypdata

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/podattr"
	"github.com/linuxdiag/aod/internal/proto"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func sample() anomaly.Anomaly {
	return anomaly.Anomaly{
		TraceID:      [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:       [8]byte{1, 2, 3, 4, 5, 6, 7, 8},
		Protocol:     "smb",
		Type:         anomaly.TypeLatency,
		Rule:         "count",
		Reason:       "10 SMB requests at or over their latency threshold",
		FirstEvent:   t0,
		DetectedAt:   t0.Add(750 * time.Millisecond),
		Window:       time.Second,
		Count:        10,
		Limit:        10,
		Threshold:    20 * time.Millisecond,
		MaxLatency:   1500 * time.Millisecond,
		Suppressed:   3,
		TopCommands:  []anomaly.Tally{{Value: "SMB2_WRITE", Count: 7}, {Value: "SMB2_READ", Count: 3}},
		TopShares:    []anomaly.Tally{{Value: `\\srv\data`, Count: 10}},
		TopProcesses: []anomaly.Tally{{Value: "fio[42]", Count: 10}},
		TopServers:   []anomaly.Tally{{Value: "srv", Count: 1}},
		TopWorkloads: []anomaly.Tally{{Value: "shop/web/app", Count: 9}},
		Events:       sampleEvents(),
		Workloads:    map[uint64]podattr.Workload{podCgroup: sampleWorkloads[podCgroup]},
		// The events' monotonic clock read 5 s at t0.
		EventTimeOffset: t0.UnixNano() - int64(5*time.Second),
	}
}

// sampleEvents has one event of each kind, on a monotonic clock that reads 5 s at t0,
// and the odd cases: a failure whose start is unknown, a command outside SMB2.
// podCgroup is the cgroup of sampleEvents' first requests, sampleWorkloads names it.
const podCgroup = 0x9a7

var sampleWorkloads = fixedWorkloads{podCgroup: {Cgroup: "/kubepods.slice/x", Runtime: podattr.RuntimeContainerd,
	ContainerID: strings.Repeat("ab", 32), PodUID: "0b6e5c2f-9d43-4c8e-a2b1-3f1e6d7c8a90", PodName: "web", Namespace: "shop",
	ContainerName: "app"}}

type fixedWorkloads map[uint64]podattr.Workload

func (f fixedWorkloads) Lookup(id uint64) (podattr.Workload, bool) {
	w, ok := f[id]
	return w, ok
}

func sampleEvents() []event.Event {
	mono := func(d time.Duration) uint64 { return uint64(5*time.Second + d) }
	slow := event.Event{Protocol: proto.SMB, Kind: event.KindSlow, Command: 9, Pid: 43, Tgid: 42, SessionID: 0x936c11ff,
		TreeID: 0x5, MessageID: 77, StartNs: mono(0), EndNs: mono(1234567891 * time.Nanosecond), CgroupID: podCgroup}
	copy(slow.Comm[:], "fio")
	failed := slow
	failed.Kind, failed.Status, failed.Rc, failed.Command = event.KindError, 0xC00000B5, -110, 5
	orphan := failed
	orphan.StartNs, orphan.Status = orphan.EndNs, 0xC0FFEE00 // start unknown, status without a name
	odd := slow
	odd.Command, odd.Pid, odd.Tgid, odd.Comm = 40, 0, 0, [16]byte{}
	reconnect := event.Event{Protocol: proto.SMB, Kind: event.KindReconnect, ConnID: 0xabc, EndNs: mono(2 * time.Second)}
	copy(reconnect.Server[:], "fileserver.example")
	connErr := reconnect
	connErr.Kind, connErr.Rc = event.KindConnectError, -111
	connect := reconnect
	connect.Kind = event.KindConnect
	ioFail := event.Event{Protocol: proto.IO, Kind: event.KindError, Command: 3, Status: 116, Rc: -116, Pid: 43, Tgid: 42,
		SessionID: 61, TreeID: 0xFF534D42, MessageID: 262, CgroupID: 0x1234, StartNs: mono(time.Second), EndNs: mono(time.Second)}
	copy(ioFail.Comm[:], "ls")
	copy(ioFail.Server[:], "/mnt/share/gone")
	return []event.Event{slow, failed, orphan, odd, reconnect, connErr, connect, ioFail}
}

func TestTraces(t *testing.T) {
	res := pcommon.NewResource()
	res.Attributes().PutStr("host.name", "client1")
	a := sample()
	td := Traces(res, []anomaly.Anomaly{a})
	if td.SpanCount() != 1 {
		t.Fatalf("%d spans, want 1", td.SpanCount())
	}
	rs := td.ResourceSpans().At(0)
	if v, _ := rs.Resource().Attributes().Get("host.name"); v.Str() != "client1" {
		t.Errorf("resource attributes not copied: %v", rs.Resource().Attributes().AsRaw())
	}
	if rs.ScopeSpans().At(0).Scope().Name() != ScopeName {
		t.Errorf("scope %q", rs.ScopeSpans().At(0).Scope().Name())
	}
	span := rs.ScopeSpans().At(0).Spans().At(0)
	if span.Name() != "smb.anomaly" || span.Kind() != ptrace.SpanKindInternal ||
		span.TraceID() != pcommon.TraceID(a.TraceID) || span.SpanID() != pcommon.SpanID(a.SpanID) ||
		!span.ParentSpanID().IsEmpty() {
		t.Errorf("span identity: name %q kind %v trace %v span %v parent %v", span.Name(), span.Kind(), span.TraceID(), span.SpanID(), span.ParentSpanID())
	}
	if span.StartTimestamp().AsTime() != t0 || span.EndTimestamp().AsTime() != a.DetectedAt {
		t.Errorf("span runs %v..%v, want first event to detection", span.StartTimestamp(), span.EndTimestamp())
	}
	want := map[string]any{
		AttrProtocol:        "smb",
		AttrType:            "latency",
		AttrRule:            "count",
		AttrReason:          a.Reason,
		AttrCount:           int64(10),
		AttrAcceptableCount: int64(10),
		AttrThreshold:       0.02,
		AttrWindow:          1.0,
		AttrMaxLatency:      1.5,
		AttrSuppressed:      int64(3),
		AttrEventCount:      int64(len(sampleEvents())),
		AttrEvents:          encodeEvents(a.Events, a.Workloads, a.EventTime),
		AttrTopCommands:     []any{"SMB2_WRITE=7", "SMB2_READ=3"},
		AttrTopShares:       []any{`\\srv\data=10`},
		AttrTopProcesses:    []any{"fio[42]=10"},
		AttrTopServers:      []any{"srv=1"},
		AttrTopWorkloads:    []any{"shop/web/app=9"},
	}
	got := span.Attributes().AsRaw()
	if len(got) != len(want) {
		t.Errorf("attributes %v, want %v", got, want)
	}
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
}

func TestSpanOmitsWhatDoesNotApply(t *testing.T) {
	a := anomaly.Anomaly{Protocol: "smb", Type: anomaly.TypeSockconn, Rule: "dropped", DetectedAt: t0, Count: 1}
	td := Traces(pcommon.NewResource(), []anomaly.Anomaly{a})
	span := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	for _, k := range []string{AttrThreshold, AttrMaxLatency, AttrAcceptableCount, AttrTopCommands, AttrReason, AttrWindow} {
		if _, ok := span.Attributes().Get(k); ok {
			t.Errorf("attribute %s set on an anomaly without it", k)
		}
	}
	// No first event: the span is an instant at detection, not a span from 1970.
	if span.StartTimestamp() != span.EndTimestamp() || span.EndTimestamp().AsTime() != t0 {
		t.Errorf("span runs %v..%v", span.StartTimestamp(), span.EndTimestamp())
	}
	// A first event after detection (clock step) is clamped.
	a.FirstEvent = t0.Add(time.Second)
	FillSpan(span, &a)
	if span.StartTimestamp() != span.EndTimestamp() {
		t.Errorf("span starts after it ends: %v..%v", span.StartTimestamp(), span.EndTimestamp())
	}
}

func TestCounter(t *testing.T) {
	c := NewCounter(t0)
	c.Declare(Key{"smb", "error", "severe"}, Key{"smb", "latency", "count"})
	lat := sample()
	sev := anomaly.Anomaly{Protocol: "smb", Type: "error", Rule: "severe"}
	c.Add([]anomaly.Anomaly{lat, lat})
	c.Declare(Key{"smb", "latency", "count"}) // declaring again keeps the count
	c.Add([]anomaly.Anomaly{lat, sev})
	now := t0.Add(time.Minute)
	md := c.Metrics(pcommon.NewResource(), now)
	if md.MetricCount() != 1 {
		t.Fatalf("%d metrics", md.MetricCount())
	}
	m := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)
	if m.Name() != MetricName || m.Unit() != MetricUnit || m.Type() != pmetric.MetricTypeSum ||
		!m.Sum().IsMonotonic() || m.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
		t.Fatalf("metric %s %s %v", m.Name(), m.Unit(), m.Type())
	}
	dps := m.Sum().DataPoints()
	got := map[Key]int64{}
	for i := range dps.Len() {
		dp := dps.At(i)
		a := dp.Attributes().AsRaw()
		got[Key{a[AttrProtocol].(string), a[AttrType].(string), a[AttrRule].(string)}] = dp.IntValue()
		if dp.StartTimestamp().AsTime() != t0 || dp.Timestamp().AsTime() != now || len(a) != 3 {
			t.Errorf("data point %v: start %v time %v", a, dp.StartTimestamp(), dp.Timestamp())
		}
	}
	want := map[Key]int64{{"smb", "error", "severe"}: 1, {"smb", "latency", "count"}: 3}
	if len(got) != len(want) || got[Key{"smb", "error", "severe"}] != 1 || got[Key{"smb", "latency", "count"}] != 3 {
		t.Errorf("counts %v, want %v", got, want)
	}
}

func TestFromSpanInvertsFillSpan(t *testing.T) {
	a := sample()
	a.TopProcesses = []anomaly.Tally{{Value: "weird=name[1]", Count: 4}}
	span := ptrace.NewSpan()
	FillSpan(span, &a)
	got, ok, err := FromSpan(span)
	if !ok || err != nil {
		t.Fatalf("anomaly span not recognised: %v, %v", ok, err)
	}
	// The events come back on the wall clock, which is where the span put them.
	want := a
	want.EventTimeOffset = 0
	want.Events = sampleEvents()
	for i := range want.Events {
		e := &want.Events[i]
		e.EndNs = uint64(int64(e.EndNs) + a.EventTimeOffset)
		if e.StartNs != 0 {
			e.StartNs = uint64(int64(e.StartNs) + a.EventTimeOffset)
		}
	}
	want.Events[2].StartNs = 0 // the orphan's start was never known
	want.Events[7].StartNs = 0 // nor has a failed system call one
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	for i := range got.Events {
		if got.Events[i] != want.Events[i] {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, got.Events[i], want.Events[i])
		}
	}

	other := ptrace.NewSpan()
	other.SetName("GET /")
	if _, ok, _ := FromSpan(other); ok {
		t.Error("an unrelated span read as an anomaly")
	}
}

// A span from elsewhere without timestamps reads as zero times, not 1970, so the
// exporter dates the bundle itself.
func TestFromSpanWithoutTimestamps(t *testing.T) {
	span := ptrace.NewSpan()
	span.SetName("smb.anomaly")
	span.Attributes().PutStr(AttrProtocol, "smb")
	span.Attributes().PutStr(AttrType, "error")
	a, ok, err := FromSpan(span)
	if !ok || err != nil || !a.DetectedAt.IsZero() || !a.FirstEvent.IsZero() || a.Events != nil {
		t.Fatalf("%+v %v %v", a, ok, err)
	}
}

// Damaged event lines are reported and left out; the others and the anomaly stay.
func TestFromSpanWithBadEvents(t *testing.T) {
	a := sample()
	span := ptrace.NewSpan()
	FillSpan(span, &a)
	lines := strings.Split(strings.TrimSpace(encodeEvents(a.Events, a.Workloads, a.EventTime)), "\n")
	lines[1] = `{"time":"yesterday","aod.protocol":"smb","aod.event.kind":"slow"}`
	lines[3] = lines[3][:20]
	span.Attributes().PutStr(AttrEvents, strings.Join(lines, "\n"))
	got, ok, err := FromSpan(span)
	if !ok || got.Rule != a.Rule || len(got.Events) != len(a.Events)-2 {
		t.Fatalf("ok %v, %d events, rule %q", ok, len(got.Events), got.Rule)
	}
	if err == nil || !strings.Contains(err.Error(), "event line 2: time:") || !strings.Contains(err.Error(), "event line 4: not a JSON object") {
		t.Errorf("error %v", err)
	}
}
