// Package anomalypdata turns detected anomalies into OpenTelemetry data: one span and
// one log record per anomaly and a counter of anomalies by protocol, type and rule.
// The collector
// connector and the standalone agent both use it, so an anomaly looks the same
// whichever way aod runs.
package anomalypdata

import (
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/linuxdiag/aod/internal/anomaly"
)

// ScopeName is the instrumentation scope of the spans and metrics.
const ScopeName = "github.com/linuxdiag/aod/processor"

// Attribute keys of the anomaly span (and, for protocol, type and rule, of the
// anomaly counter). Durations are in seconds, as OpenTelemetry prefers.
const (
	AttrProtocol        = "aod.anomaly.protocol"         // "smb"
	AttrType            = "aod.anomaly.type"             // "latency", "error", "sockconn"
	AttrRule            = "aod.anomaly.rule"             // the rule that fired
	AttrReason          = "aod.anomaly.reason"           // one human sentence
	AttrCount           = "aod.anomaly.count"            // triggering events in the window
	AttrAcceptableCount = "aod.anomaly.acceptable_count" // the count that was reached; absent for a ceiling hit
	AttrThreshold       = "aod.anomaly.threshold"        // s; latency anomalies
	AttrWindow          = "aod.anomaly.window"           // s; watch_interval_sec
	AttrMaxLatency      = "aod.anomaly.max_latency"      // s; slowest triggering request
	AttrSuppressed      = "aod.anomaly.suppressed"       // repeats the cooldown suppressed before this one
	AttrEventCount      = "aod.anomaly.event_count"      // triggering events kept with the anomaly
	// AttrEvents holds those events for the bundle, one JSON line each (AppendEvent),
	// newest kept when they exceed MaxEventsBytes. A collector's bundle exporter reads
	// them back (FromSpan); the standalone agent hands the events over directly.
	AttrEvents = "aod.anomaly.events"
	// Top lists are string arrays of "value=count", most frequent first.
	AttrTopCommands  = "aod.anomaly.top.commands"
	AttrTopShares    = "aod.anomaly.top.shares"
	AttrTopProcesses = "aod.anomaly.top.processes"
	AttrTopStatuses  = "aod.anomaly.top.statuses"
	AttrTopServers   = "aod.anomaly.top.servers"
	// AttrTopWorkloads names the pods (namespace/pod/container), containers or systemd
	// units whose requests triggered the anomaly (podattr.Workload.Name).
	AttrTopWorkloads = "aod.anomaly.top.workloads"
)

// SpanName names an anomaly's span: "smb.anomaly".
func SpanName(protocol string) string { return protocol + ".anomaly" }

// Traces returns one span per anomaly under one resource, which gets a copy of
// resource's attributes (pass pcommon.NewResource() for none).
func Traces(resource pcommon.Resource, anomalies []anomaly.Anomaly) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	resource.CopyTo(rs.Resource())
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(ScopeName)
	spans := ss.Spans()
	spans.EnsureCapacity(len(anomalies))
	for i := range anomalies {
		FillSpan(spans.AppendEmpty(), &anomalies[i])
	}
	return td
}

// FillSpan makes span the anomaly's span: a root span with the anomaly's trace and
// span ids, from its first triggering event to its detection. Exporters hang their
// work under it as child spans (parent span id = a.SpanID, trace id = a.TraceID).
func FillSpan(span ptrace.Span, a *anomaly.Anomaly) {
	span.SetTraceID(a.TraceID)
	span.SetSpanID(a.SpanID)
	span.SetName(SpanName(a.Protocol))
	span.SetKind(ptrace.SpanKindInternal)
	start := a.FirstEvent
	if start.IsZero() || start.After(a.DetectedAt) {
		start = a.DetectedAt
	}
	span.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	span.SetEndTimestamp(pcommon.NewTimestampFromTime(a.DetectedAt))

	putAttributes(span.Attributes(), a, true)
}

// putAttributes fills in the anomaly's attributes, shared by its span and its log
// record. withEvents adds AttrEvents, which only the span carries.
func putAttributes(attrs pcommon.Map, a *anomaly.Anomaly, withEvents bool) {
	attrs.EnsureCapacity(18)
	attrs.PutStr(AttrProtocol, a.Protocol)
	attrs.PutStr(AttrType, a.Type)
	attrs.PutStr(AttrRule, a.Rule)
	if a.Reason != "" {
		attrs.PutStr(AttrReason, a.Reason)
	}
	attrs.PutInt(AttrCount, int64(a.Count))
	if a.Limit > 0 {
		attrs.PutInt(AttrAcceptableCount, int64(a.Limit))
	}
	if a.Threshold > 0 {
		attrs.PutDouble(AttrThreshold, a.Threshold.Seconds())
	}
	if a.Window > 0 {
		attrs.PutDouble(AttrWindow, a.Window.Seconds())
	}
	if a.MaxLatency > 0 {
		attrs.PutDouble(AttrMaxLatency, a.MaxLatency.Seconds())
	}
	attrs.PutInt(AttrSuppressed, int64(a.Suppressed))
	attrs.PutInt(AttrEventCount, int64(len(a.Events)))
	if withEvents && len(a.Events) > 0 {
		attrs.PutStr(AttrEvents, encodeEvents(a.Events, a.Workloads, a.EventTime))
	}
	putTop(attrs, AttrTopCommands, a.TopCommands)
	putTop(attrs, AttrTopShares, a.TopShares)
	putTop(attrs, AttrTopProcesses, a.TopProcesses)
	putTop(attrs, AttrTopStatuses, a.TopStatuses)
	putTop(attrs, AttrTopServers, a.TopServers)
	putTop(attrs, AttrTopWorkloads, a.TopWorkloads)
}

func putTop(attrs pcommon.Map, key string, top []anomaly.Tally) {
	if len(top) == 0 {
		return
	}
	s := attrs.PutEmptySlice(key)
	s.EnsureCapacity(len(top))
	for _, t := range top {
		s.AppendEmpty().SetStr(fmt.Sprintf("%s=%d", t.Value, t.Count))
	}
}
