package anomalypdata

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/linuxdiag/aod/internal/cifsproc"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/otelconv"
	"github.com/linuxdiag/aod/internal/podattr"
	"github.com/linuxdiag/aod/internal/proto"
)

type noShares struct{}

func (noShares) Lookup(proto.Protocol, uint64, uint32) (cifsproc.Name, bool) {
	return cifsproc.Name{}, false
}

type offsetClock int64

func (c offsetClock) UnixNano(mono uint64) int64 { return int64(mono) + int64(c) }

// An event line holds exactly the receiver's log record for the same event: the same
// keys with the same values, plus the record's timestamp as "time".
func TestEventLineIsTheLogRecord(t *testing.T) {
	a := sample()
	lb := otelconv.NewLogBuilder(noShares{}, offsetClock(a.EventTimeOffset), "test").WithWorkloads(sampleWorkloads)
	events := sampleEvents()
	ld := lb.Build(events, t0)
	recs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	if v, _ := recs.At(0).Attributes().Get(podattr.KeyPodName); v.Str() != "web" {
		t.Errorf("the record of a request from a pod does not name the pod: %v", recs.At(0).Attributes().AsRaw())
	}
	for i := range events {
		line := AppendEvent(nil, &events[i], sampleWorkloads[events[i].CgroupID], a.EventTime)
		var got map[string]any
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("event %d: %v: %s", i, err, line)
		}
		rec := recs.At(i)
		want := map[string]any{KeyTime: rec.Timestamp().AsTime().Format(time.RFC3339Nano)}
		for k, v := range rec.Attributes().AsRaw() {
			if n, ok := v.(int64); ok {
				v = float64(n) // JSON numbers
			}
			want[k] = v
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("event %d (%v):\n line   %s\n record %v", i, events[i].Kind, line, want)
		}
	}
}

func TestEventLinesAreBounded(t *testing.T) {
	a := sample()
	events := make([]event.Event, 2000)
	for i := range events {
		events[i] = sampleEvents()[0]
		events[i].MessageID = uint64(i)
	}
	s := encodeEvents(events, nil, a.EventTime)
	if len(s) > MaxEventsBytes || len(s) < MaxEventsBytes*9/10 {
		t.Fatalf("%d bytes for 2000 events, budget %d", len(s), MaxEventsBytes)
	}
	got, _, err := DecodeEvents(s)
	if err != nil {
		t.Fatal(err)
	}
	// The newest are kept, in order.
	last := got[len(got)-1].MessageID
	if last != 1999 || got[0].MessageID != 2000-uint64(len(got)) {
		t.Fatalf("kept mids %d..%d of 0..1999", got[0].MessageID, last)
	}
	if s := encodeEvents(nil, nil, a.EventTime); s != "" {
		t.Errorf("no events encode as %q", s)
	}
}

func TestParseEventRejects(t *testing.T) {
	for line, want := range map[string]string{
		`[]`: "not a JSON object",
		`{"time":"2026-03-01T12:00:00Z","aod.protocol":"smb","aod.event.kind":"slow","smb.command":"SMB2_READ"} {}`:                                                "text after",
		`{"aod.protocol":"smb","aod.event.kind":"slow","smb.command":"SMB2_READ"}`:                                                                                 "time: missing",
		`{"time":"1969-12-31T00:00:00Z","aod.protocol":"smb","aod.event.kind":"reconnect"}`:                                                                        "after 1970",
		`{"time":"2026-03-01T12:00:00Z","aod.event.kind":"slow","smb.command":"SMB2_READ"}`:                                                                        "aod.protocol: missing",
		`{"time":"2026-03-01T12:00:00Z","aod.protocol":"ftp","aod.event.kind":"slow"}`:                                                                             `unknown protocol "ftp"`,
		`{"time":"2026-03-01T12:00:00Z","aod.protocol":"smb","aod.event.kind":"bogus"}`:                                                                            `unknown kind "bogus"`,
		`{"time":"2026-03-01T12:00:00Z","aod.protocol":"smb","aod.event.kind":7}`:                                                                                  "want a string",
		`{"time":"2026-03-01T12:00:00Z","aod.protocol":"smb","aod.event.kind":"slow","smb.command":"SMB2_FROB"}`:                                                   "unknown SMB2 command",
		`{"time":"2026-03-01T12:00:00Z","aod.protocol":"smb","aod.event.kind":"slow","smb.command":"SMB2_CMD_70000"}`:                                              "unknown SMB2 command",
		`{"time":"2026-03-01T12:00:00Z","aod.protocol":"smb","aod.event.kind":"error","smb.command":"SMB2_READ","smb.status":-1}`:                                  "smb.status: want an integer from 0",
		`{"time":"2026-03-01T12:00:00Z","aod.protocol":"smb","aod.event.kind":"error","smb.command":"SMB2_READ","smb.rc":1e99}`:                                    "smb.rc: want an integer",
		`{"time":"2026-03-01T12:00:00Z","aod.protocol":"smb","aod.event.kind":"slow","smb.command":"SMB2_READ","smb.session.id":"12"}`:                             "want a hex id",
		`{"time":"2026-03-01T12:00:00Z","aod.protocol":"smb","aod.event.kind":"slow","smb.command":"SMB2_READ","smb.tree.id":"0x100000000"}`:                       "want a hex id",
		`{"time":"2026-03-01T12:00:00Z","aod.protocol":"smb","aod.event.kind":"slow","smb.command":"SMB2_READ","smb.operation.duration":"x"}`:                      "want a number",
		`{"time":"2026-03-01T12:00:00Z","aod.protocol":"smb","aod.event.kind":"slow","smb.command":"SMB2_READ","smb.operation.start_time":"2026-03-01T13:00:00Z"}`: "is after time",
	} {
		if _, _, err := ParseEvent([]byte(line)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", line, err, want)
		}
	}
	// Unknown keys are a newer aod's: ignored.
	e, _, err := ParseEvent([]byte(`{"time":"2026-03-01T12:00:00Z","aod.protocol":"smb","aod.event.kind":"connect","future.key":[1]}`))
	if err != nil || e.Kind != event.KindConnect || e.EndNs != uint64(t0.UnixNano()) {
		t.Errorf("%+v %v", e, err)
	}
	// Without a start time, the duration gives the start.
	e, _, err = ParseEvent([]byte(`{"time":"2026-03-01T12:00:00Z","aod.protocol":"smb","aod.event.kind":"slow","smb.command":"SMB2_READ","smb.operation.duration":0.25}`))
	if err != nil || e.Latency() != 250*time.Millisecond {
		t.Errorf("%+v %v", e, err)
	}
}

func FuzzParseEventJSON(f *testing.F) {
	a := sample()
	for _, e := range sampleEvents() {
		f.Add(AppendEvent(nil, &e, podattr.Workload{}, a.EventTime))
	}
	f.Add([]byte(`{"time":"2026-03-01T12:00:00Z","aod.protocol":"smb","aod.event.kind":"slow","smb.command":"SMB2_CMD_7","smb.operation.duration":1e300}`))
	f.Add([]byte(`{"time":"2026-03-01T12:00:00Z","aod.protocol":"smb","aod.event.kind":"error","thread.name":"\u0000x\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"}`))
	unix := func(ns uint64) time.Time { return time.Unix(0, int64(ns)) }
	f.Fuzz(func(t *testing.T, line []byte) {
		e1, w1, err := ParseEvent(line)
		if err != nil {
			return
		}
		// What reads back must write and read again, and be stable from then on
		// (the first write may normalise, e.g. a name cut inside a UTF-8 sequence).
		e2, w2, err := ParseEvent(AppendEvent(nil, &e1, w1, unix))
		if err != nil {
			t.Fatalf("%q read as %+v, which does not read back: %v", line, e1, err)
		}
		e3, w3, err := ParseEvent(AppendEvent(nil, &e2, w2, unix))
		if err != nil || e3 != e2 || w3 != w2 {
			t.Fatalf("unstable: %+v %+v then %+v %+v (%v)", e2, w2, e3, w3, err)
		}
	})
}

// BenchmarkFillSpan128Events measures an anomaly span with the detectors' default
// bound of triggering events, the cost the events attribute adds per anomaly.
func BenchmarkFillSpan128Events(b *testing.B) {
	a := sample()
	a.Events = make([]event.Event, 128)
	for i := range a.Events {
		a.Events[i] = sampleEvents()[i%3]
	}
	span := ptrace.NewSpan()
	b.ReportAllocs()
	for b.Loop() {
		FillSpan(span, &a)
	}
	v, _ := span.Attributes().Get(AttrEvents)
	b.ReportMetric(float64(len(v.Str())), "attr-bytes")
}

func BenchmarkDecodeEvents128(b *testing.B) {
	a := sample()
	events := make([]event.Event, 128)
	for i := range events {
		events[i] = sampleEvents()[i%3]
	}
	s := encodeEvents(events, nil, a.EventTime)
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeEvents(s); err != nil {
			b.Fatal(err)
		}
	}
}
