package bundler

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/linuxdiag/aod/exporter/actions"
	"github.com/linuxdiag/aod/internal/anomaly"
)

// Attribute keys of the bundle and action spans.
const (
	AttrBundlePath   = "aod.bundle.path"
	AttrBundleBytes  = "aod.bundle.bytes"
	AttrActionName   = "aod.action.name"
	AttrActionStatus = "aod.action.status"
	AttrActionBytes  = "aod.action.bytes"
	AttrActionTrunc  = "aod.action.truncated"
	AttrActionExit   = "aod.action.exit_code"
	AttrActionCmd    = "aod.action.command"
	AttrActionSkip   = "aod.action.skipped_reason"
)

// RecordSpans reports a bundle as child spans of its anomaly's span (a.TraceID,
// a.SpanID): one "aod.bundle" span with the bundle's path and size (in error when
// the bundle was not made, err), and one "aod.action <name>" span per action, timed
// as it ran, with its outcome and the bundle's path. The collector exporter passes
// its component tracer; the agent passes its own.
func RecordSpans(tracer trace.Tracer, a *anomaly.Anomaly, rep Report, err error) {
	parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: a.TraceID, SpanID: a.SpanID,
		TraceFlags: trace.FlagsSampled, Remote: true})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), parent)
	path := attribute.String(AttrBundlePath, rep.Path)

	start, end := rep.Started, rep.Finished
	if start.IsZero() {
		start = a.DetectedAt
	}
	_, bs := tracer.Start(ctx, "aod.bundle", trace.WithTimestamp(start),
		trace.WithAttributes(path, attribute.Int64(AttrBundleBytes, rep.Bytes)))
	if err != nil {
		bs.SetStatus(codes.Error, err.Error())
	}
	for _, r := range rep.Actions {
		attrs := []attribute.KeyValue{path, attribute.String(AttrActionName, r.Name),
			attribute.String(AttrActionStatus, string(r.Status)), attribute.Int64(AttrActionBytes, r.Bytes),
			attribute.Bool(AttrActionTrunc, r.Truncated)}
		if r.ExitCode != nil {
			attrs = append(attrs, attribute.Int(AttrActionExit, *r.ExitCode))
		}
		if len(r.Command) > 0 {
			attrs = append(attrs, attribute.StringSlice(AttrActionCmd, r.Command))
		}
		if r.Skipped != "" {
			attrs = append(attrs, attribute.String(AttrActionSkip, r.Skipped))
		}
		_, s := tracer.Start(ctx, "aod.action "+r.Name, trace.WithTimestamp(r.Start), trace.WithAttributes(attrs...))
		if r.Status == actions.StatusFailed || r.Status == actions.StatusTimeout {
			s.SetStatus(codes.Error, r.Error)
		}
		s.End(trace.WithTimestamp(r.Start.Add(r.Duration)))
	}
	if end.IsZero() {
		end = start
	}
	bs.End(trace.WithTimestamp(end))
}
