package anomalypdata

import (
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/linuxdiag/aod/internal/anomaly"
)

func TestLogs(t *testing.T) {
	res := pcommon.NewResource()
	res.Attributes().PutStr("host.name", "client1")
	a := sample()
	b := anomaly.Anomaly{TraceID: [16]byte{9: 1}, SpanID: [8]byte{7: 2}, Protocol: "smb", Type: anomaly.TypeSockconn,
		Rule: "dropped", DetectedAt: t0.Add(time.Minute), Count: 1}
	before := time.Now()
	ld := Logs(res, []anomaly.Anomaly{a, b})
	after := time.Now()
	if ld.LogRecordCount() != 2 {
		t.Fatalf("%d log records, want 2", ld.LogRecordCount())
	}
	rl := ld.ResourceLogs().At(0)
	if v, _ := rl.Resource().Attributes().Get("host.name"); v.Str() != "client1" {
		t.Errorf("resource attributes not copied: %v", rl.Resource().Attributes().AsRaw())
	}
	if rl.ScopeLogs().At(0).Scope().Name() != ScopeName {
		t.Errorf("scope %q", rl.ScopeLogs().At(0).Scope().Name())
	}
	td := Traces(res, []anomaly.Anomaly{a, b})
	for i, an := range []anomaly.Anomaly{a, b} {
		lr := rl.ScopeLogs().At(0).LogRecords().At(i)
		if lr.EventName() != EventName || lr.SeverityNumber() != plog.SeverityNumberWarn || lr.SeverityText() != "WARN" {
			t.Errorf("%s: event %q severity %v %q", an.Rule, lr.EventName(), lr.SeverityNumber(), lr.SeverityText())
		}
		if !lr.Timestamp().AsTime().Equal(an.DetectedAt) {
			t.Errorf("%s: timestamp %v, want detection %v", an.Rule, lr.Timestamp().AsTime(), an.DetectedAt)
		}
		if obs := lr.ObservedTimestamp().AsTime(); obs.Before(before) || obs.After(after) {
			t.Errorf("%s: observed %v, not when Logs ran", an.Rule, obs)
		}
		// The record names the anomaly's span, so backends link the two.
		span := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(i)
		if lr.TraceID() != span.TraceID() || lr.SpanID() != span.SpanID() || lr.TraceID().IsEmpty() {
			t.Errorf("%s: log record ids %v/%v, span %v/%v", an.Rule, lr.TraceID(), lr.SpanID(), span.TraceID(), span.SpanID())
		}
		// The span's attributes, less the bulky events.
		want := span.Attributes().AsRaw()
		delete(want, AttrEvents)
		if got := lr.Attributes().AsRaw(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: attributes\n got %v\nwant %v", an.Rule, got, want)
		}
	}
	recs := rl.ScopeLogs().At(0).LogRecords()
	if got := recs.At(0).Body().Str(); got != a.Reason {
		t.Errorf("body %q, want the reason", got)
	}
	if v, _ := recs.At(0).Attributes().Get(AttrEventCount); v.Int() != int64(len(a.Events)) {
		t.Errorf("%s = %v, want %d", AttrEventCount, v.AsRaw(), len(a.Events))
	}
	// Without a reason the body still says what fired.
	if got := recs.At(1).Body().Str(); got != "smb.anomaly sockconn, rule dropped" {
		t.Errorf("body %q", got)
	}
}

// An anomaly without a detection time is undated (0), not dated 1970 minus the
// Unix epoch's offset.
func TestLogRecordWithoutDetectionTime(t *testing.T) {
	lr := plog.NewLogRecord()
	FillLogRecord(lr, &anomaly.Anomaly{Protocol: "smb", Type: anomaly.TypeError, Rule: "severe"}, t0)
	if lr.Timestamp() != 0 || !lr.ObservedTimestamp().AsTime().Equal(t0) {
		t.Errorf("timestamp %d observed %v", lr.Timestamp(), lr.ObservedTimestamp().AsTime())
	}
}
