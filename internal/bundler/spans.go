package bundler

import (
	"errors"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"

	"github.com/linuxdiag/aod/internal/actions"
	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/anomalypdata"
)

// A bundle is reported under its anomaly's span (a.TraceID, a.SpanID) as one
// SpanBundle span and one ActionSpanName span per action (Traces), and as one
// EventBundle log record (Logs). The standalone agent exports them over OTLP; the
// collector's aodbundle connector sends them down the pipelines it feeds.

// Span names and the log record's event name.
const (
	SpanBundle = "aod.bundle"
	// EventBundle names the bundle's log record: written or not.
	EventBundle = "aod.bundle"
	// actionSpanPrefix begins ActionSpanName.
	actionSpanPrefix = "aod.action "
)

// ActionSpanName names the span of the action called name: "aod.action dmesg".
func ActionSpanName(name string) string { return actionSpanPrefix + name }

// Attribute keys of the bundle and action spans and the bundle's log record.
const (
	AttrBundlePath  = "aod.bundle.path"  // spans and log; only for a bundle that was written
	AttrBundleBytes = "aod.bundle.bytes" // bundle span and log; only for a bundle that was written
	// AttrBundleActions lists the actions run, in configuration order, as
	// "name=status" strings (log record).
	AttrBundleActions = "aod.bundle.actions"
	AttrBundleError   = "aod.bundle.error" // why the bundle was not written (log record)
	AttrActionName    = "aod.action.name"
	AttrActionStatus  = "aod.action.status"
	AttrActionBytes   = "aod.action.bytes"
	AttrActionTrunc   = "aod.action.truncated"
	AttrActionExit    = "aod.action.exit_code"
	AttrActionCmd     = "aod.action.command"
	AttrActionSkip    = "aod.action.skipped_reason"
)

// spanDesc is one span of a bundle's report, independent of how it is emitted.
type spanDesc struct {
	name       string
	start, end time.Time
	attrs      []attribute.KeyValue
	failed     bool // status Error with message; otherwise Unset
	message    string
	parent     int // index of the parent span in the description; -1: the anomaly's span
}

// describe lists the spans reporting a's bundle: the bundle span first, then one per
// action, children of the anomaly's span. An anomaly without a span (an on-demand
// snapshot) gets a trace of its own, rooted at the bundle span, with the actions
// under it. now dates what the report leaves undated: a bundle skipped before it
// started, the end of one that failed.
func describe(a *anomaly.Anomaly, rep Report, err error, now time.Time) []spanDesc {
	b := bundleDesc(a, rep, err, now)
	spans := make([]spanDesc, 1, 1+len(rep.Actions))
	spans[0] = b
	actionParent := -1
	if !hasSpan(a) {
		actionParent = 0
	}
	for _, r := range rep.Actions {
		attrs := make([]attribute.KeyValue, 0, 8)
		if rep.Path != "" {
			attrs = append(attrs, attribute.String(AttrBundlePath, rep.Path))
		}
		attrs = append(attrs, attribute.String(AttrActionName, r.Name),
			attribute.String(AttrActionStatus, string(r.Status)), attribute.Int64(AttrActionBytes, r.Bytes),
			attribute.Bool(AttrActionTrunc, r.Truncated))
		if r.ExitCode != nil {
			attrs = append(attrs, attribute.Int(AttrActionExit, *r.ExitCode))
		}
		if len(r.Command) > 0 {
			attrs = append(attrs, attribute.StringSlice(AttrActionCmd, r.Command))
		}
		if r.Skipped != "" {
			attrs = append(attrs, attribute.String(AttrActionSkip, r.Skipped))
		}
		s := spanDesc{name: ActionSpanName(r.Name), start: r.Start, end: r.Start.Add(r.Duration), attrs: attrs, parent: actionParent}
		if r.Start.IsZero() {
			s.start, s.end = b.start, b.start
		}
		if r.Status == actions.StatusFailed || r.Status == actions.StatusTimeout {
			s.failed, s.message = true, r.Error
		}
		spans = append(spans, s)
	}
	return spans
}

// bundleDesc describes the bundle span: from the bundle's start (or, when it never
// started, the detection) to its end, in error when it was not written.
func bundleDesc(a *anomaly.Anomaly, rep Report, err error, now time.Time) spanDesc {
	d := spanDesc{name: SpanBundle, start: rep.Started, end: rep.Finished, parent: -1}
	if d.start.IsZero() {
		d.start = a.DetectedAt
	}
	if d.start.IsZero() {
		d.start = now
	}
	if d.end.IsZero() {
		d.end = now
	}
	if d.end.Before(d.start) {
		d.end = d.start
	}
	if rep.Path != "" {
		d.attrs = []attribute.KeyValue{attribute.String(AttrBundlePath, rep.Path), attribute.Int64(AttrBundleBytes, rep.Bytes)}
	}
	if err != nil {
		d.failed, d.message = true, err.Error()
	}
	return d
}

// hasSpan tells whether a has a span to hang the bundle's spans under.
func hasSpan(a *anomaly.Anomaly) bool {
	return a.TraceID != [16]byte{} && a.SpanID != [8]byte{}
}

// Traces returns a's bundle report (rep, or err when it was not written) as spans
// under one resource, which gets a copy of resource's attributes, for the standalone
// agent's trace exporter. The spans' ids are drawn here.
func Traces(resource pcommon.Resource, a *anomaly.Anomaly, rep Report, err error) ptrace.Traces {
	descs := describe(a, rep, err, time.Now())
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	resource.CopyTo(rs.Resource())
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(ScopeName)
	traceID, parentID := pcommon.TraceID(a.TraceID), pcommon.SpanID(a.SpanID)
	if !hasSpan(a) {
		t, _ := anomalypdata.NewIDs()
		traceID, parentID = t, pcommon.NewSpanIDEmpty()
	}
	ids := make([]pcommon.SpanID, len(descs))
	spans := ss.Spans()
	spans.EnsureCapacity(len(descs))
	for i, d := range descs {
		s := spans.AppendEmpty()
		ids[i] = anomalypdata.NewSpanID()
		s.SetTraceID(traceID)
		s.SetSpanID(ids[i])
		if d.parent >= 0 {
			s.SetParentSpanID(ids[d.parent])
		} else {
			s.SetParentSpanID(parentID)
		}
		s.SetName(d.name)
		s.SetKind(ptrace.SpanKindInternal)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(d.start))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(d.end))
		putAttrs(s.Attributes(), d.attrs)
		if d.failed {
			s.Status().SetCode(ptrace.StatusCodeError)
			s.Status().SetMessage(d.message)
		}
	}
	return td
}

// Logs returns a's bundle report as one log record under one resource, which gets a
// copy of resource's attributes: "bundle written" (INFO) with the bundle's path,
// size and actions, or "bundle not written: <err>" (WARN when it was skipped, ERROR
// when it failed). It is dated when the bundle ended, carries the anomaly's
// protocol, type and rule, and names the anomaly's span, so backends link it there.
func Logs(resource pcommon.Resource, a *anomaly.Anomaly, rep Report, err error) plog.Logs {
	now := time.Now()
	d := bundleDesc(a, rep, err, now)
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	resource.CopyTo(rl.Resource())
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(ScopeName)
	lr := sl.LogRecords().AppendEmpty()
	lr.SetEventName(EventBundle)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(d.end))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(now))
	if hasSpan(a) {
		lr.SetTraceID(a.TraceID)
		lr.SetSpanID(a.SpanID)
	}
	attrs := lr.Attributes()
	attrs.EnsureCapacity(7)
	attrs.PutStr(anomalypdata.AttrProtocol, a.Protocol)
	attrs.PutStr(anomalypdata.AttrType, a.Type)
	attrs.PutStr(anomalypdata.AttrRule, a.Rule)
	putAttrs(attrs, d.attrs)
	if len(rep.Actions) > 0 {
		s := attrs.PutEmptySlice(AttrBundleActions)
		s.EnsureCapacity(len(rep.Actions))
		for _, r := range rep.Actions {
			s.AppendEmpty().SetStr(r.Name + "=" + string(r.Status))
		}
	}
	switch {
	case err == nil:
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
		lr.Body().SetStr("bundle written")
	case errors.Is(err, ErrBusy) || errors.Is(err, ErrLowSpace) || errors.Is(err, ErrClosed):
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
		lr.SetSeverityText("WARN")
	default:
		lr.SetSeverityNumber(plog.SeverityNumberError)
		lr.SetSeverityText("ERROR")
	}
	if err != nil {
		lr.Body().SetStr("bundle not written: " + d.message)
		attrs.PutStr(AttrBundleError, d.message)
	}
	return ld
}

// putAttrs copies OpenTelemetry API attributes into a pdata map, for the kinds of
// value the bundle's spans use (TestFormsAgree catches a new one).
func putAttrs(m pcommon.Map, kvs []attribute.KeyValue) {
	for _, kv := range kvs {
		k := string(kv.Key)
		switch kv.Value.Type() {
		case attribute.BOOL:
			m.PutBool(k, kv.Value.AsBool())
		case attribute.INT64:
			m.PutInt(k, kv.Value.AsInt64())
		case attribute.STRINGSLICE:
			s := m.PutEmptySlice(k)
			for _, v := range kv.Value.AsStringSlice() {
				s.AppendEmpty().SetStr(v)
			}
		default:
			m.PutStr(k, kv.Value.String())
		}
	}
}
