package upload

import (
	"encoding/hex"
	"log/slog"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/anomalypdata"
	"github.com/linuxdiag/aod/internal/bundler"
)

// An upload that ended is reported under its anomaly's span, beside the bundle's
// own records (internal/bundler), as one SpanUpload span and one EventUpload log
// record, both naming the anomaly's trace and span: a backend joins the anomaly,
// its bundle on the host and the bundle's object by those ids. The standalone agent
// and the collector's aodbundle connector send both over OTLP.

// Span name and log record event name of an upload's outcome.
const (
	SpanUpload  = "aod.upload"
	EventUpload = "aod.upload"
)

// Attribute keys of the upload's span and log record, beside bundler.AttrBundlePath
// and bundler.AttrBundleBytes and, on the log record, the anomaly's protocol, type
// and rule (anomalypdata.AttrProtocol, ...).
const (
	AttrRecordDestination = "aod.upload.destination" // azure, s3
	AttrRecordOutcome     = "aod.upload.outcome"     // OutcomeUploaded, ...
	AttrRecordError       = "aod.upload.error"       // why it was not uploaded
	// AttrURL is the object's URL once stored (OpenTelemetry's url.full), without
	// any credential in it.
	AttrURL = "url.full"
)

// Link names the anomaly a bundle was written for: its span's trace and span ids
// (hex; empty for an anomaly without a span, an on-demand snapshot), protocol,
// type and rule.
type Link struct {
	TraceID  string `json:"trace_id,omitempty"`
	SpanID   string `json:"span_id,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	Type     string `json:"type,omitempty"`
	Rule     string `json:"rule,omitempty"`
}

// LinkOf returns a's Link; nil gives the zero Link.
func LinkOf(a *anomaly.Anomaly) Link {
	if a == nil {
		return Link{}
	}
	l := Link{Protocol: a.Protocol, Type: a.Type, Rule: a.Rule}
	if a.TraceID != [16]byte{} && a.SpanID != [8]byte{} {
		l.TraceID, l.SpanID = hex.EncodeToString(a.TraceID[:]), hex.EncodeToString(a.SpanID[:])
	}
	return l
}

// ids returns l's trace and span ids, or false when it has none (or they do not
// decode: a journal edited by hand).
func (l Link) ids() (pcommon.TraceID, pcommon.SpanID, bool) {
	var t pcommon.TraceID
	var s pcommon.SpanID
	tb, err1 := hex.DecodeString(l.TraceID)
	sb, err2 := hex.DecodeString(l.SpanID)
	if err1 != nil || err2 != nil || len(tb) != len(t) || len(sb) != len(s) {
		return t, s, false
	}
	copy(t[:], tb)
	copy(s[:], sb)
	return t, s, true
}

// attrs puts what both records carry about the upload.
func (o *Outcome) attrs(m pcommon.Map) {
	m.PutStr(bundler.AttrBundlePath, o.Path)
	if o.Bytes > 0 {
		m.PutInt(bundler.AttrBundleBytes, o.Bytes)
	}
	m.PutStr(AttrRecordDestination, o.Destination)
	m.PutStr(AttrRecordOutcome, o.Outcome)
	if o.URL != "" {
		m.PutStr(AttrURL, o.URL)
	}
	if o.Err != nil {
		m.PutStr(AttrRecordError, o.Err.Error())
	}
}

// stored tells whether the bundle is in the store.
func (o *Outcome) stored() bool { return o.State == StateUploaded }

// Traces returns o as one span under one resource, which gets a copy of resource's
// attributes: a child of the anomaly's span, over the attempt that ended the
// upload, in error unless the bundle is stored. Without an anomaly span it is the
// root of a trace of its own.
func Traces(resource pcommon.Resource, o Outcome, now time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	resource.CopyTo(rs.Resource())
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(bundler.ScopeName)
	s := ss.Spans().AppendEmpty()
	if tid, sid, ok := o.Anomaly.ids(); ok {
		s.SetTraceID(tid)
		s.SetParentSpanID(sid)
	} else {
		tid, _ := anomalypdata.NewIDs()
		s.SetTraceID(tid)
	}
	s.SetSpanID(anomalypdata.NewSpanID())
	s.SetName(SpanUpload)
	s.SetKind(ptrace.SpanKindClient)
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-o.Duration)))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	o.attrs(s.Attributes())
	if !o.stored() {
		s.Status().SetCode(ptrace.StatusCodeError)
		s.Status().SetMessage(o.message())
	}
	return td
}

// Logs returns o as one log record under one resource, which gets a copy of
// resource's attributes: "bundle uploaded" (INFO) with the object's URL, or "bundle
// not uploaded: <err>" (WARN when skipped, ERROR when failed or lost). It names the
// anomaly's span and carries its protocol, type and rule.
func Logs(resource pcommon.Resource, o Outcome, now time.Time) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	resource.CopyTo(rl.Resource())
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(bundler.ScopeName)
	lr := sl.LogRecords().AppendEmpty()
	lr.SetEventName(EventUpload)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(now))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(now))
	if tid, sid, ok := o.Anomaly.ids(); ok {
		lr.SetTraceID(tid)
		lr.SetSpanID(sid)
	}
	attrs := lr.Attributes()
	attrs.EnsureCapacity(10)
	if o.Anomaly.Protocol != "" {
		attrs.PutStr(anomalypdata.AttrProtocol, o.Anomaly.Protocol)
		attrs.PutStr(anomalypdata.AttrType, o.Anomaly.Type)
		attrs.PutStr(anomalypdata.AttrRule, o.Anomaly.Rule)
	}
	o.attrs(attrs)
	switch {
	case o.stored():
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
		lr.Body().SetStr("bundle uploaded")
	case o.State == StateSkipped:
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
		lr.SetSeverityText("WARN")
	default:
		lr.SetSeverityNumber(plog.SeverityNumberError)
		lr.SetSeverityText("ERROR")
	}
	if !o.stored() {
		lr.Body().SetStr("bundle not uploaded: " + o.message())
	}
	return ld
}

func (o *Outcome) message() string {
	if o.Err != nil {
		return o.Err.Error()
	}
	return o.Outcome
}

// reporterQueue bounds the outcomes waiting to be sent: far more than the uploads
// that can end at once.
const reporterQueue = 256

// Reporter hands outcomes to send in order, from a goroutine of its own: OnOutcome
// runs under the uploader's lock, and sending a record down a pipeline or over
// OTLP may wait. A full queue drops the record with a warning; the outcome is
// still in the uploader's log and metrics.
type Reporter struct {
	ch   chan Outcome
	done chan struct{}
	log  *slog.Logger
}

// NewReporter starts a Reporter calling send; Close stops it.
func NewReporter(send func(Outcome), log *slog.Logger) *Reporter {
	r := &Reporter{ch: make(chan Outcome, reporterQueue), done: make(chan struct{}), log: log}
	go func() {
		defer close(r.done)
		for o := range r.ch {
			send(o)
		}
	}()
	return r
}

// Record queues o; it never blocks. Use it as Options.OnOutcome.
func (r *Reporter) Record(o Outcome) {
	select {
	case r.ch <- o:
	default:
		r.log.Warn("upload record dropped: too many waiting to be sent", "bundle", o.Bundle, "destination", o.Destination)
	}
}

// Close sends what is queued and stops; call it after the uploader's Shutdown.
func (r *Reporter) Close() {
	close(r.ch)
	<-r.done
}
