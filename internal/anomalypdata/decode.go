package anomalypdata

import (
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/linuxdiag/aod/internal/anomaly"
)

// FromSpan reads an anomaly back from its span, for a collector exporter that receives
// anomalies as traces. It reports false for spans that are not anomaly spans. The
// triggering events come back from AttrEvents with Unix-nanosecond timestamps
// (EventTimeOffset 0); lines that do not decode are left out and described by err,
// and the rest of the anomaly is still good. Missing timestamps are zero times, not
// the Unix epoch.
func FromSpan(span ptrace.Span) (a anomaly.Anomaly, ok bool, err error) {
	attrs := span.Attributes()
	protocol, typ := str(attrs, AttrProtocol), str(attrs, AttrType)
	if protocol == "" || typ == "" || span.Name() != SpanName(protocol) {
		return anomaly.Anomaly{}, false, nil
	}
	a = anomaly.Anomaly{
		TraceID:      span.TraceID(),
		SpanID:       span.SpanID(),
		Protocol:     protocol,
		Type:         typ,
		Rule:         str(attrs, AttrRule),
		Reason:       str(attrs, AttrReason),
		FirstEvent:   timeOrZero(span.StartTimestamp()),
		DetectedAt:   timeOrZero(span.EndTimestamp()),
		Window:       seconds(attrs, AttrWindow),
		Count:        int(integer(attrs, AttrCount)),
		Limit:        int(integer(attrs, AttrAcceptableCount)),
		Threshold:    seconds(attrs, AttrThreshold),
		MaxLatency:   seconds(attrs, AttrMaxLatency),
		Suppressed:   int(integer(attrs, AttrSuppressed)),
		TopCommands:  top(attrs, AttrTopCommands),
		TopShares:    top(attrs, AttrTopShares),
		TopProcesses: top(attrs, AttrTopProcesses),
		TopStatuses:  top(attrs, AttrTopStatuses),
		TopServers:   top(attrs, AttrTopServers),
		TopWorkloads: top(attrs, AttrTopWorkloads),
	}
	if s := str(attrs, AttrEvents); s != "" {
		a.Events, a.Workloads, err = DecodeEvents(s)
	}
	return a, true, err
}

func timeOrZero(ts pcommon.Timestamp) time.Time {
	if ts == 0 {
		return time.Time{}
	}
	return ts.AsTime()
}

func str(m pcommon.Map, key string) string {
	v, _ := m.Get(key)
	return v.Str()
}

func integer(m pcommon.Map, key string) int64 {
	v, _ := m.Get(key)
	return v.Int()
}

func seconds(m pcommon.Map, key string) time.Duration {
	v, ok := m.Get(key)
	if !ok {
		return 0
	}
	return time.Duration(v.Double() * float64(time.Second)).Round(time.Microsecond)
}

// top reads "value=count" entries; the count follows the last "=", so values may hold
// one themselves.
func top(m pcommon.Map, key string) []anomaly.Tally {
	v, ok := m.Get(key)
	if !ok || v.Type() != pcommon.ValueTypeSlice {
		return nil
	}
	var out []anomaly.Tally
	for _, e := range v.Slice().All() {
		s := e.Str()
		i := strings.LastIndexByte(s, '=')
		if i < 0 {
			continue
		}
		n, err := strconv.Atoi(s[i+1:])
		if err != nil {
			continue
		}
		out = append(out, anomaly.Tally{Value: s[:i], Count: n})
	}
	return out
}
