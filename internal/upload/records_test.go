package upload

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/anomalypdata"
	"github.com/linuxdiag/aod/internal/bundler"
)

func testAnomaly() *anomaly.Anomaly {
	return &anomaly.Anomaly{TraceID: [16]byte{0xa, 1, 2}, SpanID: [8]byte{0xb, 3}, Protocol: "smb", Type: "latency", Rule: "count"}
}

// TestOutcomeNamesItsAnomalyAcrossRestarts hands a bundle to an uploader that
// stops before uploading it: the next one, reading the journal, reports the
// upload under the anomaly the first was told of, with the bundle's path and the
// object's URL.
func TestOutcomeNamesItsAnomalyAcrossRestarts(t *testing.T) {
	s := newStore(t, "s3")
	out := t.TempDir()
	bundles := writeBundles(t, out, 1, 64<<10)
	oc := make(sink, 4)
	// New's scan finds the bundle before Notify names its anomaly, as a periodic
	// scan can between the bundle's rename and the bundler's Notify.
	u, err := New(testOptions(t, out, s.dest, oc))
	if err != nil {
		t.Fatal(err)
	}
	a := testAnomaly()
	path := filepath.Join(out, "batches", bundles[0])
	u.Notify(path, a)
	if err := u.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	start(t, testOptions(t, out, s.dest, oc))
	o := oc.await(t, 1)[0]
	if o.Outcome != OutcomeUploaded || o.URL == "" || o.Path != path {
		t.Fatalf("outcome %+v", o)
	}
	if want := LinkOf(a); o.Anomaly != want || want.TraceID != "0a010200000000000000000000000000" || want.SpanID != "0b03000000000000" {
		t.Fatalf("outcome names %+v; want %+v", o.Anomaly, want)
	}
}

// TestRecords checks the span and the log record of an upload: under the
// anomaly's trace and span, with the bundle's path, the object's URL and the
// anomaly's identity; and a failure in error with its reason.
func TestRecords(t *testing.T) {
	res := pcommon.NewResource()
	res.Attributes().PutStr("host.name", "web-1")
	now := time.Date(2026, 12, 6, 13, 4, 5, 0, time.UTC)
	a := testAnomaly()
	ok := Outcome{Bundle: "b.tar.zst", Destination: "s3", State: StateUploaded, Outcome: OutcomeUploaded,
		URL: "http://store/bundles/aod/v1/x.tar.zst", Path: "/var/log/aod/batches/b.tar.zst", Bytes: 42,
		Duration: time.Second, Anomaly: LinkOf(a)}

	s := Traces(res, ok, now).ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	if s.Name() != SpanUpload || s.TraceID() != a.TraceID || s.ParentSpanID() != a.SpanID || s.SpanID().IsEmpty() ||
		s.Status().Code() == ptrace.StatusCodeError || s.StartTimestamp().AsTime() != now.Add(-time.Second) {
		t.Errorf("span %s trace %s parent %s status %v", s.Name(), s.TraceID(), s.ParentSpanID(), s.Status().Code())
	}
	want := map[string]any{bundler.AttrBundlePath: ok.Path, bundler.AttrBundleBytes: int64(42),
		AttrRecordDestination: "s3", AttrRecordOutcome: OutcomeUploaded, AttrURL: ok.URL}
	if got := s.Attributes().AsRaw(); !equal(got, want) {
		t.Errorf("span attributes %v; want %v", got, want)
	}

	ld := Logs(res, ok, now)
	if v, _ := ld.ResourceLogs().At(0).Resource().Attributes().Get("host.name"); v.Str() != "web-1" {
		t.Error("log record lost the resource")
	}
	lr := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	if lr.EventName() != EventUpload || lr.TraceID() != a.TraceID || lr.SpanID() != a.SpanID ||
		lr.SeverityNumber() != plog.SeverityNumberInfo || lr.Body().Str() != "bundle uploaded" {
		t.Errorf("log record %s trace %s span %s %v %q", lr.EventName(), lr.TraceID(), lr.SpanID(), lr.SeverityNumber(), lr.Body().Str())
	}
	want[anomalypdata.AttrProtocol], want[anomalypdata.AttrType], want[anomalypdata.AttrRule] = "smb", "latency", "count"
	if got := lr.Attributes().AsRaw(); !equal(got, want) {
		t.Errorf("log attributes %v; want %v", got, want)
	}

	// A failure, for a bundle the uploader found without its anomaly.
	bad := Outcome{Bundle: "b.tar.zst", Destination: "azure", State: StateFailed, Outcome: OutcomeFailed,
		Path: ok.Path, Err: errors.New("403 forbidden")}
	s = Traces(res, bad, now).ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	if s.TraceID().IsEmpty() || !s.ParentSpanID().IsEmpty() || s.Status().Code() != ptrace.StatusCodeError || s.Status().Message() != "403 forbidden" {
		t.Errorf("failed span: trace %s parent %s status %v %q", s.TraceID(), s.ParentSpanID(), s.Status().Code(), s.Status().Message())
	}
	lr = Logs(res, bad, now).ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	if !lr.TraceID().IsEmpty() || lr.SeverityNumber() != plog.SeverityNumberError || lr.Body().Str() != "bundle not uploaded: 403 forbidden" {
		t.Errorf("failed log record: %v %q", lr.SeverityNumber(), lr.Body().Str())
	}
	if _, has := lr.Attributes().Get(AttrURL); has {
		t.Error("a failed upload has a URL")
	}
}

func equal(got, want map[string]any) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}
