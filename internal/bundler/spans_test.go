package bundler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/trace"

	"github.com/linuxdiag/aod/internal/actions"
	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/anomalypdata"
	"github.com/linuxdiag/aod/internal/proto"
)

// spanView is what a span of a report says. parent names the parent span:
// "anomaly" for the anomaly's span, "" for a root.
type spanView struct {
	name, parent, kind string
	attrs              map[string]any
	failed             bool
	message            string
	start, end         time.Time
}

func (v spanView) String() string {
	return fmt.Sprintf("%s (parent %q, %s) %v..%v failed=%v %q %v", v.name, v.parent, v.kind,
		v.start.Format(time.RFC3339Nano), v.end.Format(time.RFC3339Nano), v.failed, v.message, v.attrs)
}

// norm drops what reflect.DeepEqual would tell apart in equal times (monotonic
// reading, location).
func norm(t time.Time) time.Time { return time.Unix(0, t.UnixNano()).UTC() }

// views returns spans sorted by name, checking they share one valid trace: the
// anomaly's when it has a span.
func views(t *testing.T, form string, a *anomaly.Anomaly, spans []spanView, traceIDs [][16]byte) []spanView {
	t.Helper()
	for _, id := range traceIDs {
		if id != traceIDs[0] || id == [16]byte{} || (hasSpan(a) && id != a.TraceID) {
			t.Errorf("%s: trace ids %x, anomaly's %x", form, traceIDs, a.TraceID)
			break
		}
	}
	slices.SortFunc(spans, func(x, y spanView) int { return strings.Compare(x.name, y.name) })
	return spans
}

// viaPdata builds the report's ptrace form, checking the resource, scope and span ids.
func viaPdata(t *testing.T, a *anomaly.Anomaly, rep Report, err error) []spanView {
	t.Helper()
	res := pcommon.NewResource()
	res.Attributes().PutStr("host.name", "client1")
	td := Traces(res, a, rep, err)
	rs := td.ResourceSpans().At(0)
	if v, _ := rs.Resource().Attributes().Get("host.name"); td.ResourceSpans().Len() != 1 || v.Str() != "client1" {
		t.Errorf("resource %v", rs.Resource().Attributes().AsRaw())
	}
	ss := rs.ScopeSpans().At(0)
	if ss.Scope().Name() != ScopeName {
		t.Errorf("scope %q", ss.Scope().Name())
	}
	names := map[pcommon.SpanID]string{pcommon.SpanID(a.SpanID): "anomaly"}
	for _, s := range ss.Spans().All() {
		if s.SpanID().IsEmpty() || s.SpanID() == pcommon.SpanID(a.SpanID) {
			t.Errorf("%s: span id %v", s.Name(), s.SpanID())
		}
		if _, dup := names[s.SpanID()]; dup {
			t.Errorf("%s: span id %v used twice", s.Name(), s.SpanID())
		}
		names[s.SpanID()] = s.Name()
	}
	var out []spanView
	var ids [][16]byte
	kinds := map[ptrace.SpanKind]string{ptrace.SpanKindInternal: trace.SpanKindInternal.String()}
	for _, s := range ss.Spans().All() {
		v := spanView{name: s.Name(), kind: kinds[s.Kind()], attrs: s.Attributes().AsRaw(),
			failed: s.Status().Code() == ptrace.StatusCodeError, message: s.Status().Message(),
			start: norm(s.StartTimestamp().AsTime()), end: norm(s.EndTimestamp().AsTime())}
		if !s.ParentSpanID().IsEmpty() {
			v.parent = names[s.ParentSpanID()]
			if v.parent == "" {
				t.Errorf("%s: parent %v is nowhere", s.Name(), s.ParentSpanID())
			}
		}
		out = append(out, v)
		ids = append(ids, s.TraceID())
	}
	return views(t, "pdata", a, out, ids)
}

// reported returns an anomaly detected a minute ago and the report of its bundle,
// which took 2 s, so the moment a form is made is after the report's times.
func reported() (anomaly.Anomaly, Report) {
	a := sample()
	a.DetectedAt = a.DetectedAt.Add(-time.Minute)
	start := a.DetectedAt.Add(time.Millisecond)
	exit0, exit1 := 0, 1
	return a, Report{Path: "/var/log/aod/batches/aod_quick_1_smb_latency.tar.zst", Bytes: 4096,
		Started: start, Finished: start.Add(2 * time.Second),
		Actions: []actions.Result{
			{Name: "dmesg", Command: []string{"journalctl", "-k"}, Status: actions.StatusOK, ExitCode: &exit0,
				Start: start, Duration: 300 * time.Millisecond, Bytes: 1000},
			{Name: "tcpdump", Status: actions.StatusTimeout, Start: start, Duration: time.Second, Bytes: 3000,
				Truncated: true, Error: "killed after 1s"},
			{Name: "smbinfo", Status: actions.StatusSkipped, Start: start.Add(time.Millisecond), Skipped: "smbinfo not installed"},
			{Name: "journalctl", Command: []string{"journalctl"}, Status: actions.StatusFailed, ExitCode: &exit1,
				Start: start, Duration: 50 * time.Millisecond, Error: "exit status 1"},
		}}
}

// Traces reports each case's spans with the names, parents, kinds, attributes,
// status and times they must have.
func TestTraces(t *testing.T) {
	a, rep := reported()
	snap := anomaly.Anomaly{Protocol: SnapshotProtocol, Type: anomaly.TypeSnapshot, Rule: "on-demand", DetectedAt: a.DetectedAt}
	failed := rep
	failed.Path, failed.Bytes, failed.Finished = "", 0, time.Time{}
	cases := []struct {
		name string
		a    *anomaly.Anomaly
		rep  Report
		err  error
	}{
		{"written", &a, rep, nil},
		{"skipped", &a, Report{}, ErrBusy},
		{"failed", &a, failed, errors.New("disk full")},
		{"snapshot", &snap, rep, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := time.Now()
			spans := viaPdata(t, c.a, c.rep, c.err)
			after := time.Now()
			if len(spans) != 1+len(c.rep.Actions) {
				t.Fatalf("%d spans, want %d", len(spans), 1+len(c.rep.Actions))
			}
			// What the report leaves undated is dated when the spans were made.
			for _, s := range spans {
				if c.rep.Finished.IsZero() && s.name == SpanBundle && (s.end.Before(norm(before)) || s.end.After(norm(after))) {
					t.Errorf("%s ends %v, not when reported", s.name, s.end)
				}
			}
			checkSpans(t, c.a, c.rep, c.err, spans)
		})
	}
}

// checkSpans checks a report's spans (sorted by name) against what they must say.
func checkSpans(t *testing.T, a *anomaly.Anomaly, rep Report, err error, spans []spanView) {
	t.Helper()
	byName := map[string]spanView{}
	for _, s := range spans {
		byName[s.name] = s
	}
	b := byName[SpanBundle]
	if b.parent != "anomaly" && hasSpan(a) || b.parent != "" && !hasSpan(a) || b.kind != "internal" {
		t.Errorf("bundle span: %v", b)
	}
	wantStart := rep.Started
	if wantStart.IsZero() {
		wantStart = a.DetectedAt
	}
	if !b.start.Equal(wantStart) || (!rep.Finished.IsZero() && !b.end.Equal(rep.Finished)) {
		t.Errorf("bundle span runs %v..%v, want %v..%v", b.start, b.end, wantStart, rep.Finished)
	}
	if err != nil {
		if !b.failed || b.message != err.Error() || len(b.attrs) != 0 {
			t.Errorf("bundle span of an unwritten bundle: %v", b)
		}
	} else if b.failed || b.attrs[AttrBundlePath] != rep.Path || b.attrs[AttrBundleBytes] != rep.Bytes {
		t.Errorf("bundle span of a written bundle: %v", b)
	}
	wantParent := "anomaly"
	if !hasSpan(a) {
		wantParent = SpanBundle // a snapshot's actions hang under its bundle
	}
	for _, r := range rep.Actions {
		s, ok := byName[ActionSpanName(r.Name)]
		if !ok {
			t.Errorf("no span for action %s", r.Name)
			continue
		}
		want := map[string]any{AttrActionName: r.Name, AttrActionStatus: string(r.Status),
			AttrActionBytes: r.Bytes, AttrActionTrunc: r.Truncated}
		if rep.Path != "" {
			want[AttrBundlePath] = rep.Path
		}
		if r.ExitCode != nil {
			want[AttrActionExit] = int64(*r.ExitCode)
		}
		if len(r.Command) > 0 {
			var cmd []any
			for _, c := range r.Command {
				cmd = append(cmd, c)
			}
			want[AttrActionCmd] = cmd
		}
		if r.Skipped != "" {
			want[AttrActionSkip] = r.Skipped
		}
		if !reflect.DeepEqual(s.attrs, want) {
			t.Errorf("%s attributes\n got %v\nwant %v", s.name, s.attrs, want)
		}
		failed := r.Status == actions.StatusFailed || r.Status == actions.StatusTimeout
		if s.parent != wantParent || s.failed != failed || (failed && s.message != r.Error) ||
			!s.start.Equal(r.Start) || !s.end.Equal(r.Start.Add(r.Duration)) {
			t.Errorf("%s: %v", s.name, s)
		}
	}
}

// A real bundle reported as pdata names the file it wrote.
func TestTracesOfARealBundle(t *testing.T) {
	b := newBundler(t, Options{Actions: map[Key][]string{{Protocol: "smb", Type: anomaly.TypeLatency}: {"mounts"}}})
	a := sample()
	rep, err := b.Collect(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	spans := viaPdata(t, &a, rep, nil)
	checkSpans(t, &a, rep, nil, spans)
	if st, err := os.Stat(rep.Path); err != nil || st.Size() != rep.Bytes {
		t.Fatalf("bundle %s: %v %v", rep.Path, st, err)
	}
	if len(spans) != 1+1+len(actions.Always[proto.SMB]) {
		t.Errorf("%d spans: %v", len(spans), spans)
	}
}

func TestLogs(t *testing.T) {
	a, rep := reported()
	snap := anomaly.Anomaly{Protocol: SnapshotProtocol, Type: anomaly.TypeSnapshot, Rule: "on-demand"}
	cases := []struct {
		name     string
		a        *anomaly.Anomaly
		rep      Report
		err      error
		severity plog.SeverityNumber
		body     string
	}{
		{"written", &a, rep, nil, plog.SeverityNumberInfo, "bundle written"},
		{"busy", &a, Report{}, ErrBusy, plog.SeverityNumberWarn, "bundle not written: " + ErrBusy.Error()},
		{"low space", &a, Report{}, fmt.Errorf("%w (1 byte free)", ErrLowSpace), plog.SeverityNumberWarn,
			"bundle not written: " + ErrLowSpace.Error() + " (1 byte free)"},
		{"failed", &a, Report{Started: rep.Started, Actions: rep.Actions}, errors.New("disk full"), plog.SeverityNumberError,
			"bundle not written: disk full"},
		{"snapshot", &snap, rep, nil, plog.SeverityNumberInfo, "bundle written"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := pcommon.NewResource()
			res.Attributes().PutStr("host.name", "client1")
			before := time.Now()
			ld := Logs(res, c.a, c.rep, c.err)
			after := time.Now()
			if ld.LogRecordCount() != 1 {
				t.Fatalf("%d log records", ld.LogRecordCount())
			}
			rl := ld.ResourceLogs().At(0)
			if v, _ := rl.Resource().Attributes().Get("host.name"); v.Str() != "client1" || rl.ScopeLogs().At(0).Scope().Name() != ScopeName {
				t.Errorf("resource %v scope %q", rl.Resource().Attributes().AsRaw(), rl.ScopeLogs().At(0).Scope().Name())
			}
			lr := rl.ScopeLogs().At(0).LogRecords().At(0)
			if lr.EventName() != EventBundle || lr.SeverityNumber() != c.severity || lr.SeverityText() != strings.ToUpper(c.severity.String()) ||
				lr.Body().Str() != c.body {
				t.Errorf("event %q severity %v %q body %q", lr.EventName(), lr.SeverityNumber(), lr.SeverityText(), lr.Body().Str())
			}
			if lr.TraceID() != pcommon.TraceID(c.a.TraceID) || lr.SpanID() != pcommon.SpanID(c.a.SpanID) {
				t.Errorf("ids %v/%v, want the anomaly's", lr.TraceID(), lr.SpanID())
			}
			if obs := lr.ObservedTimestamp().AsTime(); obs.Before(before) || obs.After(after) {
				t.Errorf("observed %v", obs)
			}
			if ts := lr.Timestamp().AsTime(); !c.rep.Finished.IsZero() && !ts.Equal(c.rep.Finished) ||
				c.rep.Finished.IsZero() && (ts.Before(before) || ts.After(after)) {
				t.Errorf("dated %v, want when the bundle ended (%v)", ts, c.rep.Finished)
			}
			want := map[string]any{anomalypdata.AttrProtocol: c.a.Protocol, anomalypdata.AttrType: c.a.Type,
				anomalypdata.AttrRule: c.a.Rule}
			if c.err == nil {
				want[AttrBundlePath], want[AttrBundleBytes] = c.rep.Path, c.rep.Bytes
			} else {
				want[AttrBundleError] = strings.TrimPrefix(c.body, "bundle not written: ")
			}
			if len(c.rep.Actions) > 0 {
				want[AttrBundleActions] = []any{"dmesg=ok", "tcpdump=timeout", "smbinfo=skipped", "journalctl=failed"}
			}
			if got := lr.Attributes().AsRaw(); !reflect.DeepEqual(got, want) {
				t.Errorf("attributes\n got %v\nwant %v", got, want)
			}
		})
	}
}
