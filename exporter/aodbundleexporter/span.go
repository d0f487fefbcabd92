package aodbundleexporter

import (
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/processor/anomalypdata"
)

// anomalyFromSpan reads back an anomaly span made by anomalypdata.FillSpan (the
// detector connector's output). Spans without the protocol and type attributes are
// not anomalies. The triggering events do not travel in the span, so the bundle's
// events.jsonl is empty in a collector; the counts and top lists are kept.
func anomalyFromSpan(span ptrace.Span) (anomaly.Anomaly, bool) {
	attrs := span.Attributes()
	proto, ok1 := attrs.Get(anomalypdata.AttrProtocol)
	typ, ok2 := attrs.Get(anomalypdata.AttrType)
	if !ok1 || !ok2 || proto.Str() == "" || typ.Str() == "" {
		return anomaly.Anomaly{}, false
	}
	a := anomaly.Anomaly{
		TraceID:    span.TraceID(),
		SpanID:     span.SpanID(),
		Protocol:   proto.Str(),
		Type:       typ.Str(),
		Rule:       str(attrs, anomalypdata.AttrRule),
		Reason:     str(attrs, anomalypdata.AttrReason),
		FirstEvent: span.StartTimestamp().AsTime(),
		DetectedAt: span.EndTimestamp().AsTime(),
		Count:      int(integer(attrs, anomalypdata.AttrCount)),
		Limit:      int(integer(attrs, anomalypdata.AttrAcceptableCount)),
		Threshold:  seconds(attrs, anomalypdata.AttrThreshold),
		Window:     seconds(attrs, anomalypdata.AttrWindow),
		MaxLatency: seconds(attrs, anomalypdata.AttrMaxLatency),
		Suppressed: int(integer(attrs, anomalypdata.AttrSuppressed)),

		TopCommands:  top(attrs, anomalypdata.AttrTopCommands),
		TopShares:    top(attrs, anomalypdata.AttrTopShares),
		TopProcesses: top(attrs, anomalypdata.AttrTopProcesses),
		TopStatuses:  top(attrs, anomalypdata.AttrTopStatuses),
		TopServers:   top(attrs, anomalypdata.AttrTopServers),
	}
	if span.EndTimestamp() == 0 {
		a.DetectedAt = time.Now()
	}
	return a, true
}

func str(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok {
		return v.AsString()
	}
	return ""
}

func integer(m pcommon.Map, key string) int64 {
	if v, ok := m.Get(key); ok && v.Type() == pcommon.ValueTypeInt {
		return v.Int()
	}
	return 0
}

func seconds(m pcommon.Map, key string) time.Duration {
	v, ok := m.Get(key)
	if !ok {
		return 0
	}
	switch v.Type() {
	case pcommon.ValueTypeDouble:
		return time.Duration(v.Double() * float64(time.Second))
	case pcommon.ValueTypeInt:
		return time.Duration(v.Int()) * time.Second
	}
	return 0
}

// top decodes a top-N list of "value=count" strings; the value may itself hold '='.
func top(m pcommon.Map, key string) []anomaly.Tally {
	v, ok := m.Get(key)
	if !ok || v.Type() != pcommon.ValueTypeSlice {
		return nil
	}
	s := v.Slice()
	out := make([]anomaly.Tally, 0, s.Len())
	for i := range s.Len() {
		item := s.At(i).AsString()
		value, count := item, 0
		if j := strings.LastIndexByte(item, '='); j >= 0 {
			if n, err := strconv.Atoi(item[j+1:]); err == nil {
				value, count = item[:j], n
			}
		}
		out = append(out, anomaly.Tally{Value: value, Count: count})
	}
	return out
}
