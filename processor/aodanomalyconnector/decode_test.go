package aodanomalyconnector

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/proto"
)

// Every event kind survives the receiver's encoding and decode, with its times moved
// from CLOCK_MONOTONIC to Unix nanoseconds.
func TestDecodeInvertsTheReceiver(t *testing.T) {
	req := slow(9, 3*time.Second, 1234567*time.Nanosecond)
	failed := req
	failed.Kind, failed.Status, failed.Rc = event.KindError, 0xC0000011, -61
	reconnect := event.Event{Protocol: proto.SMB, Kind: event.KindReconnect, ConnID: 0xabc, EndNs: uint64(4 * time.Second)}
	copy(reconnect.Server[:], "fileserver.example")
	connErr := reconnect
	connErr.Kind, connErr.Rc = event.KindConnectError, -111
	unknownCmd := req
	unknownCmd.Command = 40

	for _, want := range []event.Event{req, failed, reconnect, connErr, unknownCmd} {
		ld := logsOf(want)
		var got event.Event
		if !decode(ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0), &got) {
			t.Fatalf("%v: not decoded", want.Kind)
		}
		shift := uint64(t0.UnixNano())
		want.EndNs += shift
		if want.StartNs != 0 {
			want.StartNs += shift
		}
		if got != want {
			t.Errorf("%v:\n got %+v\nwant %+v", want.Kind, got, want)
		}
		if got.Latency() != want.Latency() {
			t.Errorf("%v: latency %v, want %v", want.Kind, got.Latency(), want.Latency())
		}
	}
}

// Records from elsewhere, or with attributes of the wrong type, never panic and never
// pass for something they are not.
func TestDecodeOddRecords(t *testing.T) {
	lr := plog.NewLogRecord()
	var e event.Event
	if decode(lr, &e) {
		t.Error("a record without aod.event.kind decoded")
	}
	lr.Attributes().PutStr("aod.event.kind", "slow")
	if decode(lr, &e) {
		t.Error("a record without aod.protocol decoded")
	}
	lr.Attributes().PutStr("aod.protocol", "ftp")
	if decode(lr, &e) {
		t.Error("a record of an unknown protocol decoded")
	}
	lr.Attributes().PutStr("aod.protocol", "smb")
	lr.Attributes().PutStr("aod.event.kind", "bogus")
	if decode(lr, &e) {
		t.Error("an unknown kind decoded")
	}
	lr.Attributes().PutStr("aod.event.kind", "slow")
	lr.Attributes().PutStr("smb.operation.duration", "fast")
	lr.Attributes().PutStr("smb.session.id", "zz")
	lr.Attributes().PutDouble("smb.tree.id", 1.5)
	lr.Attributes().PutStr("smb.message.id", "x")
	lr.SetObservedTimestamp(1000)
	if !decode(lr, &e) {
		t.Fatal("a slow record with odd attributes did not decode")
	}
	if e.Kind != event.KindSlow || e.StartNs != 0 || e.EndNs != 1000 || e.SessionID != 0 || e.TreeID != 0 || e.Command != unknownCommand {
		t.Errorf("decoded %+v", e)
	}
	// A duration longer than the time since the epoch cannot be: no start.
	lr.Attributes().PutDouble("smb.operation.duration", 5)
	if decode(lr, &e); e.StartNs != 0 {
		t.Errorf("impossible duration gave start %d", e.StartNs)
	}
}
