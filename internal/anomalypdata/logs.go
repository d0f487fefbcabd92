package anomalypdata

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/linuxdiag/aod/internal/anomaly"
)

// EventName is the event name of an anomaly's log record. It goes in the record's
// event name field, where the receiver's event records carry theirs (semantic
// conventions moved event.name from an attribute to that field).
const EventName = "aod.anomaly"

// Logs returns one log record per anomaly under one resource, which gets a copy of
// resource's attributes, observed now.
func Logs(resource pcommon.Resource, anomalies []anomaly.Anomaly) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	resource.CopyTo(rl.Resource())
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(ScopeName)
	recs := sl.LogRecords()
	recs.EnsureCapacity(len(anomalies))
	now := time.Now()
	for i := range anomalies {
		FillLogRecord(recs.AppendEmpty(), &anomalies[i], now)
	}
	return ld
}

// FillLogRecord makes lr the anomaly's log record: a WARN dated at detection whose
// body is the anomaly's reason (or its name, for an anomaly without one), carrying the anomaly span's trace and span ids (so a
// backend links the two) and the span's attributes, except AttrEvents. Those events
// were already exported one log record each by the receiver, and repeating up to
// MaxEventsBytes of them here would only duplicate them in the log backend, which
// caps record sizes more tightly than trace backends; AttrEventCount still says how
// many there were and the linked span carries them.
func FillLogRecord(lr plog.LogRecord, a *anomaly.Anomaly, observed time.Time) {
	lr.SetEventName(EventName)
	lr.SetTimestamp(sinceOrZero(a.DetectedAt))
	lr.SetObservedTimestamp(sinceOrZero(observed))
	lr.SetSeverityNumber(plog.SeverityNumberWarn)
	lr.SetSeverityText("WARN")
	lr.SetTraceID(a.TraceID)
	lr.SetSpanID(a.SpanID)
	if a.Reason != "" {
		lr.Body().SetStr(a.Reason)
	} else {
		lr.Body().SetStr(SpanName(a.Protocol) + " " + a.Type + ", rule " + a.Rule)
	}
	putAttributes(lr.Attributes(), a, false)
}
