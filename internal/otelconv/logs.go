package otelconv

import (
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/linuxdiag/aod/internal/cifsproc"
	"github.com/linuxdiag/aod/internal/errno"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/podattr"
	"github.com/linuxdiag/aod/internal/proto"
)

// Event names of the log records, one per event.Kind.
const (
	EventSlow         = "smb.client.request.slow"
	EventFailed       = "smb.client.request.failed"
	EventReconnect    = "smb.client.reconnect"
	EventConnect      = "smb.client.connect"
	EventConnectError = "smb.client.connect.failed"
	EventLost         = "smb.client.connection.lost"
	EventClosed       = "smb.client.connection.closed"
)

// Clock converts the kernel's CLOCK_MONOTONIC nanoseconds to Unix nanoseconds;
// *wallclock.Converter is one.
type Clock interface {
	UnixNano(mono uint64) int64
}

// LogBuilder turns events into log records. It keeps scratch space between calls, so
// use one per goroutine.
type LogBuilder struct {
	names   Resolver
	work    Workloads
	clock   Clock
	version string
	buf     []byte
}

// NewLogBuilder returns a builder naming shares with names and dating events with
// clock; version is the scope version stamped on the records.
func NewLogBuilder(names Resolver, clock Clock, version string) *LogBuilder {
	return &LogBuilder{names: names, clock: clock, version: version, buf: make([]byte, 0, 64)}
}

// Workloads names the workload of a cgroup id; *podattr.Resolver is one.
type Workloads interface {
	Lookup(cgroupID uint64) (podattr.Workload, bool)
}

// WithWorkloads makes the builder name the cgroup, pod, container or unit of each
// request's issuer with w; without it records carry the cgroup id only.
func (b *LogBuilder) WithWorkloads(w Workloads) *LogBuilder {
	b.work = w
	return b
}

// Build returns one log record per event, all in one resource and scope, observed at
// the given time.
func (b *LogBuilder) Build(events []event.Event, observed time.Time) plog.Logs {
	ld := plog.NewLogs()
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	sl.Scope().SetName(ScopeName)
	sl.Scope().SetVersion(b.version)
	recs := sl.LogRecords()
	recs.EnsureCapacity(len(events))
	obs := pcommon.NewTimestampFromTime(observed)
	for i := range events {
		b.Append(recs.AppendEmpty(), &events[i], obs)
	}
	return ld
}

// Append fills lr from ev.
func (b *LogBuilder) Append(lr plog.LogRecord, ev *event.Event, observed pcommon.Timestamp) {
	lr.SetObservedTimestamp(observed)
	lr.SetTimestamp(pcommon.Timestamp(b.clock.UnixNano(ev.EndNs)))
	attrs := lr.Attributes()
	attrs.EnsureCapacity(16)
	attrs.PutStr(AttrProtocol, ev.Protocol.String())
	attrs.PutStr(AttrEventKind, ev.Kind.String())

	switch ev.Kind {
	case event.KindSlow, event.KindError:
		b.request(lr, ev)
	default:
		b.connection(lr, ev)
	}
}

func (b *LogBuilder) request(lr plog.LogRecord, ev *event.Event) {
	t := proto.TableOf(ev.Protocol)
	k := &t.Keys
	attrs := lr.Attributes()
	cmd := ev.Cmd().String()
	latency := ev.Latency().Seconds()
	// A failure whose start the kernel never saw (orphan) has StartNs == EndNs: its
	// latency is unknown, not zero.
	startKnown := ev.StartNs != ev.EndNs
	attrs.PutStr(k.Command, cmd)
	if startKnown {
		attrs.PutDouble(k.OpDuration, latency)
	}
	lr.SetSeverityNumber(plog.SeverityNumberWarn)
	lr.SetSeverityText("WARN")

	b.buf = append(b.buf[:0], cmd...)
	if ev.Kind == event.KindError {
		lr.SetEventName(EventFailed)
		status := ev.Stat().String()
		attrs.PutStr(AttrErrorType, status)
		attrs.PutInt(k.Status, int64(ev.Status))
		attrs.PutInt(k.Rc, int64(ev.Rc))
		b.buf = append(b.buf, " failed: "...)
		b.buf = append(b.buf, status...)
		if startKnown {
			b.buf = append(b.buf, " after "...)
		}
	} else {
		lr.SetEventName(EventSlow)
		b.buf = append(b.buf, " took "...)
	}
	if startKnown {
		b.buf = strconv.AppendFloat(b.buf, latency, 'f', -1, 64)
		b.buf = append(b.buf, " s"...)
	}

	name, _ := b.names.Lookup(ev.Protocol, ev.SessionID, ev.TreeID)
	if ev.Protocol == proto.IO {
		b.fileOperation(attrs, ev, name)
	} else if name.Server != "" {
		attrs.PutStr(k.Server, name.Server)
		if name.Share != "" {
			attrs.PutStr(k.Share, name.Share)
		}
		b.buf = append(b.buf, " on "...)
		b.buf = t.AppendShare(b.buf, name.Server, name.Share)
	}
	lr.Body().SetStr(string(b.buf))

	attrs.PutStr(k.SessionID, b.hex(ev.SessionID))
	attrs.PutStr(k.TreeID, b.hex(uint64(ev.TreeID)))
	attrs.PutInt(k.MessageID, int64(ev.MessageID))
	if ev.Pid != 0 {
		attrs.PutInt(AttrPid, int64(ev.Tgid))
		attrs.PutInt(AttrTid, int64(ev.Pid))
		attrs.PutStr(AttrComm, ev.CommString())
	}
	b.workload(attrs, ev.CgroupID)
	if startKnown {
		b.buf = time.Unix(0, b.clock.UnixNano(ev.StartNs)).UTC().AppendFormat(b.buf[:0], time.RFC3339Nano)
		attrs.PutStr(k.OpStartTime, string(b.buf))
	}
}

// workload names the issuer's cgroup: its id, and what runs in it.
func (b *LogBuilder) workload(attrs pcommon.Map, cgroupID uint64) {
	if cgroupID == 0 {
		return
	}
	attrs.PutStr(podattr.KeyCgroupID, b.hex(cgroupID))
	if b.work == nil {
		return
	}
	if w, ok := b.work.Lookup(cgroupID); ok {
		w.Attributes(func(k, v string) { attrs.PutStr(k, v) })
	}
}

// fileOperation ends the body of a failed file operation with the mount it hit (its
// mount point and file system type) and puts the path the process passed, if any.
func (b *LogBuilder) fileOperation(attrs pcommon.Map, ev *event.Event, name cifsproc.Name) {
	k := &proto.TableOf(ev.Protocol).Keys
	if name.Share != "" {
		attrs.PutStr(k.Share, name.Share)
		attrs.PutStr(k.Server, name.Server)
		b.buf = append(b.buf, " on "...)
		b.buf = append(b.buf, name.Share...)
		b.buf = append(b.buf, " ("...)
		b.buf = append(b.buf, name.Server...)
		b.buf = append(b.buf, ')')
	}
	if path := ev.ServerString(); path != "" {
		attrs.PutStr(AttrFilePath, path)
	}
}

// connectionRecord is how a connection event's record reads: its event name,
// severity, and the start of its body (the server follows).
type connectionRecord struct {
	name     string
	severity plog.SeverityNumber
	text     string
	body     string
}

// connectionRecords are the records of the connection kinds; any other kind is a
// failed connect (connectionFailed), which also carries the error.
var (
	connectionRecords = map[event.Kind]connectionRecord{
		event.KindReconnect: {EventReconnect, plog.SeverityNumberWarn, "WARN", "reconnect to "},
		event.KindConnect:   {EventConnect, plog.SeverityNumberInfo, "INFO", "connected to "},
		event.KindLost:      {EventLost, plog.SeverityNumberWarn, "WARN", "connection lost to "},
		event.KindClosed:    {EventClosed, plog.SeverityNumberInfo, "INFO", "idle connection closed to "},
	}
	connectionFailed = connectionRecord{EventConnectError, plog.SeverityNumberError, "ERROR", "connection failed to "}
)

func (b *LogBuilder) connection(lr plog.LogRecord, ev *event.Event) {
	k := &proto.TableOf(ev.Protocol).Keys
	attrs := lr.Attributes()
	server := ev.ServerString()
	r, ok := connectionRecords[ev.Kind]
	if !ok {
		r = connectionFailed
		attrs.PutInt(k.Rc, int64(ev.Rc))
		if errno := errno.Name(-ev.Rc); errno != "" {
			attrs.PutStr(AttrErrorType, errno)
		}
	}
	lr.SetEventName(r.name)
	lr.SetSeverityNumber(r.severity)
	lr.SetSeverityText(r.text)
	b.buf = append(b.buf[:0], r.body...)
	b.buf = append(b.buf, server...)
	lr.Body().SetStr(string(b.buf))
	if server != "" {
		attrs.PutStr(AttrServer, server)
	}
	attrs.PutStr(k.ConnID, b.hex(ev.ConnID))
}

// hex formats v as the kernel prints ids in DebugData and traces: 0x-prefixed.
func (b *LogBuilder) hex(v uint64) string {
	b.buf = append(b.buf[:0], "0x"...)
	b.buf = strconv.AppendUint(b.buf, v, 16)
	return string(b.buf)
}
