package otelconv

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/linuxdiag/aod/internal/cifsproc"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/nfs"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/smb"
)

// fixedOffset is a Clock whose wall time is the monotonic time plus an offset.
type fixedOffset int64

func (o fixedOffset) UnixNano(mono uint64) int64 { return int64(mono) + int64(o) }

// mapNames resolves from a fixed table.
type mapNames map[[2]uint64]cifsproc.Name

func (m mapNames) Lookup(_ proto.Protocol, ses uint64, tree uint32) (cifsproc.Name, bool) {
	n, ok := m[[2]uint64{ses, uint64(tree)}]
	return n, ok
}

var testNames = mapNames{{0x936c11ff, 0x53dfe4a}: {Server: "127.0.0.1", Share: "share"}}

// The wall clock was at 2026-11-26 02:11:33 UTC when the monotonic clock read 14 s.
var testEpoch = time.Date(2026, 11, 26, 2, 11, 33, 0, time.UTC)
var testClock = fixedOffset(testEpoch.UnixNano() - 14_000_000_000)

func comm(s string) (c [16]byte) { copy(c[:], s); return c }

func attrsOf(t *testing.T, lr plog.LogRecord) map[string]any {
	t.Helper()
	return lr.Attributes().AsRaw()
}

func TestLogRecordForFailedRequest(t *testing.T) {
	// smb3_cmd_err of the 6.12 trace: stat's CREATE of a missing file.
	ev := event.Event{Protocol: proto.SMB,
		Kind: event.KindError, Command: 5, Status: 0xc0000034, Rc: -2,
		Pid: 433, Tgid: 433, Comm: comm("stat"),
		SessionID: 0x936c11ff, TreeID: 0x53dfe4a, MessageID: 369,
		StartNs: 14_667_696_000, EndNs: 14_842_052_000,
	}
	observed := testEpoch.Add(time.Second)
	ld := NewLogBuilder(testNames, testClock, "v1").Build([]event.Event{ev}, observed)

	if ld.LogRecordCount() != 1 {
		t.Fatalf("%d records", ld.LogRecordCount())
	}
	sl := ld.ResourceLogs().At(0).ScopeLogs().At(0)
	if sl.Scope().Name() != ScopeName || sl.Scope().Version() != "v1" {
		t.Errorf("scope %s %s", sl.Scope().Name(), sl.Scope().Version())
	}
	lr := sl.LogRecords().At(0)
	if got, want := lr.Timestamp().AsTime(), testEpoch.Add(842_052*time.Microsecond); !got.Equal(want) {
		t.Errorf("timestamp %v, want %v", got, want)
	}
	if !lr.ObservedTimestamp().AsTime().Equal(observed) {
		t.Errorf("observed %v", lr.ObservedTimestamp().AsTime())
	}
	if lr.EventName() != EventFailed || lr.SeverityNumber() != plog.SeverityNumberWarn {
		t.Errorf("event %q severity %v", lr.EventName(), lr.SeverityNumber())
	}
	want := map[string]any{
		AttrProtocol:               "smb",
		AttrEventKind:              "error",
		smb.Table.Keys.Command:     "SMB2_CREATE",
		smb.Table.Keys.OpDuration:  0.174356,
		AttrErrorType:              "STATUS_OBJECT_NAME_NOT_FOUND",
		smb.Table.Keys.Status:      int64(0xc0000034),
		smb.Table.Keys.Rc:          int64(-2),
		AttrServer:                 "127.0.0.1",
		smb.Table.Keys.Share:       "share",
		smb.Table.Keys.SessionID:   "0x936c11ff",
		smb.Table.Keys.TreeID:      "0x53dfe4a",
		smb.Table.Keys.MessageID:   int64(369),
		AttrPid:                    int64(433),
		AttrTid:                    int64(433),
		AttrComm:                   "stat",
		smb.Table.Keys.OpStartTime: "2026-11-26T02:11:33.667696Z",
	}
	got := attrsOf(t, lr)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("attributes %v, want exactly %v", got, want)
	}
	if body := lr.Body().Str(); body != `SMB2_CREATE failed: STATUS_OBJECT_NAME_NOT_FOUND after 0.174356 s on \\127.0.0.1\share` {
		t.Errorf("body %q", body)
	}
}

// An NFS RPC's record names its export as NFS does, server:/export.
func TestLogRecordForNFSNamesTheExport(t *testing.T) {
	names := mapNames{{4, 0}: {Server: "127.0.0.1", Share: "/srv/nfs"}}
	ev := event.Event{Protocol: proto.NFS, Kind: event.KindError, Command: nfs.V4Lookup, Status: 2, Rc: -2,
		SessionID: 4, StartNs: 14_000_000_000, EndNs: 14_500_000_000}
	lr := NewLogBuilder(names, testClock, "v1").Build([]event.Event{ev}, testEpoch).ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	if body := lr.Body().Str(); body != "NFSPROC4_CLNT_LOOKUP failed: NFS4ERR_NOENT after 0.5 s on 127.0.0.1:/srv/nfs" {
		t.Errorf("body %q", body)
	}
	if got := attrsOf(t, lr); got[nfs.Table.Keys.Share] != "/srv/nfs" || got[AttrServer] != "127.0.0.1" || got[AttrProtocol] != "nfs" {
		t.Errorf("attributes %v", got)
	}
}

func TestLogRecordForSlowRequestOfUnknownShare(t *testing.T) {
	ev := event.Event{Protocol: proto.SMB,
		Kind: event.KindSlow, Command: 8, Pid: 10, Tgid: 9, Comm: comm("kworker/0:1"),
		SessionID: 0x77, TreeID: 5, MessageID: 1 << 40,
		StartNs: 14_000_000_000, EndNs: 15_250_000_000,
	}
	ld := NewLogBuilder(testNames, testClock, "v1").Build([]event.Event{ev}, testEpoch)
	lr := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	got := attrsOf(t, lr)
	if lr.EventName() != EventSlow || got[smb.Table.Keys.OpDuration] != 1.25 || got[smb.Table.Keys.Command] != "SMB2_READ" {
		t.Errorf("event %q attrs %v", lr.EventName(), got)
	}
	for _, k := range []string{AttrServer, smb.Table.Keys.Share, AttrErrorType, smb.Table.Keys.Status, smb.Table.Keys.Rc} {
		if _, ok := got[k]; ok {
			t.Errorf("%s set on a slow request of an unknown share", k)
		}
	}
	if got[smb.Table.Keys.MessageID] != int64(1<<40) || got[AttrPid] != int64(9) || got[AttrTid] != int64(10) || got[AttrComm] != "kworker/0:1" {
		t.Errorf("ids %v", got)
	}
	if got[smb.Table.Keys.OpStartTime] != "2026-11-26T02:11:33Z" {
		t.Errorf("start %v", got[smb.Table.Keys.OpStartTime])
	}
	if body := lr.Body().Str(); body != "SMB2_READ took 1.25 s" {
		t.Errorf("body %q", body)
	}
}

func TestLogRecordForFailureWithoutStart(t *testing.T) {
	// The kernel saw the error but not the request's enter (it began before the probes
	// attached, or its start was evicted): no latency, no issuing task.
	ev := event.Event{Protocol: proto.SMB,
		Kind: event.KindError, Command: 5, Status: 0xc0000034, Rc: -2,
		SessionID: 0x936c11ff, TreeID: 0x53dfe4a, MessageID: 369,
		StartNs: 14_842_052_000, EndNs: 14_842_052_000,
	}
	ld := NewLogBuilder(testNames, testClock, "v1").Build([]event.Event{ev}, testEpoch)
	lr := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	got := attrsOf(t, lr)
	for _, k := range []string{smb.Table.Keys.OpDuration, smb.Table.Keys.OpStartTime, AttrPid, AttrTid, AttrComm} {
		if _, ok := got[k]; ok {
			t.Errorf("%s set for a failure whose start was not seen: %v", k, got[k])
		}
	}
	if got[AttrErrorType] != "STATUS_OBJECT_NAME_NOT_FOUND" || got[smb.Table.Keys.Share] != "share" {
		t.Errorf("attrs %v", got)
	}
	if body := lr.Body().Str(); body != `SMB2_CREATE failed: STATUS_OBJECT_NAME_NOT_FOUND on \\127.0.0.1\share` {
		t.Errorf("body %q", body)
	}
}

func TestLogRecordForConnectionEvents(t *testing.T) {
	var srv [64]byte
	copy(srv[:], "fs1.example.com")
	evs := []event.Event{
		{Protocol: proto.SMB, Kind: event.KindReconnect, ConnID: 1, Server: srv, EndNs: 15_000_000_000},
		{Protocol: proto.SMB, Kind: event.KindConnect, ConnID: 2, Server: srv, EndNs: 15_000_000_000},
		{Protocol: proto.SMB, Kind: event.KindConnectError, ConnID: 3, Server: srv, Rc: -111, EndNs: 15_000_000_000},
		{Protocol: proto.SMB, Kind: event.KindLost, ConnID: 4, Server: srv, EndNs: 15_000_000_000},
		{Protocol: proto.SMB, Kind: event.KindClosed, ConnID: 5, Server: srv, EndNs: 15_000_000_000},
	}
	ld := NewLogBuilder(testNames, testClock, "v1").Build(evs, testEpoch)
	recs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	for i, want := range []struct {
		name, kind, body string
		sev              plog.SeverityNumber
	}{
		{EventReconnect, "reconnect", "reconnect to fs1.example.com", plog.SeverityNumberWarn},
		{EventConnect, "connect", "connected to fs1.example.com", plog.SeverityNumberInfo},
		{EventConnectError, "connect_error", "connection failed to fs1.example.com", plog.SeverityNumberError},
		{EventLost, "lost", "connection lost to fs1.example.com", plog.SeverityNumberWarn},
		{EventClosed, "closed", "idle connection closed to fs1.example.com", plog.SeverityNumberInfo},
	} {
		lr := recs.At(i)
		got := attrsOf(t, lr)
		if lr.EventName() != want.name || got[AttrEventKind] != want.kind || lr.Body().Str() != want.body || lr.SeverityNumber() != want.sev {
			t.Errorf("record %d: %q %v %q %v", i, lr.EventName(), got, lr.Body().Str(), lr.SeverityNumber())
		}
		if got[AttrServer] != "fs1.example.com" || got[smb.Table.Keys.ConnID] != "0x"+string(rune('1'+i)) {
			t.Errorf("record %d attrs %v", i, got)
		}
		if !lr.Timestamp().AsTime().Equal(testEpoch.Add(time.Second)) {
			t.Errorf("record %d time %v", i, lr.Timestamp().AsTime())
		}
	}
	if got := attrsOf(t, recs.At(2)); got[smb.Table.Keys.Rc] != int64(-111) || got[AttrErrorType] != "ECONNREFUSED" {
		t.Errorf("connect error attrs %v", got)
	}
	for _, i := range []int{0, 1, 3, 4} {
		if got := attrsOf(t, recs.At(i)); got[smb.Table.Keys.Rc] != nil || got[AttrErrorType] != nil {
			t.Errorf("record %d carries an error: %v", i, got)
		}
	}
}

func TestUnknownCodesKeepTheirNumbers(t *testing.T) {
	ev := event.Event{Protocol: proto.SMB, Kind: event.KindError, Command: 77, Status: 0xdeadbeef}
	ld := NewLogBuilder(testNames, testClock, "").Build([]event.Event{ev}, testEpoch)
	got := attrsOf(t, ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0))
	if got[smb.Table.Keys.Command] != "SMB2_CMD_77" || got[AttrErrorType] != "0xdeadbeef" {
		t.Errorf("attrs %v", got)
	}
}

func BenchmarkLogRecord(b *testing.B) {
	ev := event.Event{Protocol: proto.SMB,
		Kind: event.KindError, Command: 5, Status: 0xc0000034, Rc: -2,
		Pid: 433, Tgid: 433, Comm: comm("stat"),
		SessionID: 0x936c11ff, TreeID: 0x53dfe4a, MessageID: 369,
		StartNs: 14_667_696_000, EndNs: 14_842_052_000,
	}
	events := make([]event.Event, 256)
	for i := range events {
		events[i] = ev
	}
	lb := NewLogBuilder(testNames, testClock, "v1")
	obs := pcommon.NewTimestampFromTime(testEpoch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(events) {
		ld := plog.NewLogs()
		recs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
		recs.EnsureCapacity(len(events))
		for j := range events {
			lb.Append(recs.AppendEmpty(), &events[j], obs)
		}
	}
}
