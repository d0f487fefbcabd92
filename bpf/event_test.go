package bpf

import (
	"bytes"
	"errors"
	"testing"

	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/proto"
)

func sampleEvent() event.Event {
	ev := event.Event{
		Protocol: proto.SMB, Kind: event.KindError, Command: 5, Status: 0xc0000034, Rc: -2, Pid: 423, Tgid: 420,
		SessionID: 0x936c11ff, TreeID: 0x53dfe4a, MessageID: 359, ConnID: 7,
		CgroupID: 0x1f2e3d4c5b6a7988,
		StartNs:  13_819_789_000, EndNs: 13_824_935_000,
	}
	copy(ev.Comm[:], "stat")
	copy(ev.Server[:], "fileserver.example")
	return ev
}

func TestDecodeEventRoundTrip(t *testing.T) {
	want := sampleEvent()
	raw := EncodeEvent(nil, &want)
	if len(raw) != EventSize {
		t.Fatalf("encoded %d bytes, want %d", len(raw), EventSize)
	}
	var got event.Event
	// The ring pads records to 8 bytes: longer input is fine.
	if err := DecodeEvent(append(raw, 0, 0, 0, 0), &got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("decoded %+v, want %+v", got, want)
	}
	if got.Latency() != 5_146_000 || got.CommString() != "stat" || got.ServerString() != "fileserver.example" {
		t.Errorf("decoded latency %v comm %q server %q", got.Latency(), got.CommString(), got.ServerString())
	}
	// Little-endian fields at the documented offsets.
	if raw[offKind] != byte(event.KindError) || raw[offProtocol] != byte(proto.SMB) || raw[offStatus] != 0x34 || raw[offStatus+3] != 0xc0 || raw[offRc] != 0xfe || raw[offCgroupID] != 0x88 || raw[EventSize-1] != 0x1f {
		t.Errorf("encoding is not the kernel's layout: % x", raw)
	}
	dst := make([]byte, 0, 2*EventSize)
	if out := EncodeEvent(dst, &want); &out[0] != &dst[:1][0] || !bytes.Equal(out, raw) {
		t.Error("EncodeEvent did not reuse a large enough dst")
	}
}

func TestDecodeEventRejectsBadRecords(t *testing.T) {
	ev := sampleEvent()
	raw := EncodeEvent(nil, &ev)
	var got event.Event
	if err := DecodeEvent(raw[:EventSize-1], &got); !errors.Is(err, ErrShortEvent) {
		t.Errorf("short record: %v", err)
	}
	if err := DecodeEvent(nil, &got); !errors.Is(err, ErrShortEvent) {
		t.Errorf("empty record: %v", err)
	}
	for _, kind := range []byte{0, byte(event.KindLast) + 1, 255} {
		raw[offKind] = kind
		if err := DecodeEvent(raw, &got); !errors.Is(err, ErrUnknownEvent) {
			t.Errorf("kind %d: %v", kind, err)
		}
	}
	raw[offKind] = byte(event.KindError)
	for _, p := range []byte{0, 4, 255} {
		raw[offProtocol] = p
		if err := DecodeEvent(raw, &got); !errors.Is(err, ErrUnknownEvent) {
			t.Errorf("protocol %d: %v", p, err)
		}
	}
	if got != (event.Event{}) {
		t.Errorf("a rejected record changed the event: %+v", got)
	}
}

func TestDecodeEventDoesNotAllocate(t *testing.T) {
	ev := sampleEvent()
	raw := EncodeEvent(nil, &ev)
	var got event.Event
	if n := testing.AllocsPerRun(1000, func() {
		if err := DecodeEvent(raw, &got); err != nil {
			t.Fatal(err)
		}
		_ = DecodeEvent(raw[:10], &got) // the error path too
	}); n != 0 {
		t.Errorf("DecodeEvent allocates %v times", n)
	}
}

func FuzzDecodeRingEvent(f *testing.F) {
	ev := sampleEvent()
	f.Add(EncodeEvent(nil, &ev))
	f.Add(make([]byte, EventSize))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var got event.Event
		err := DecodeEvent(raw, &got)
		if len(raw) < EventSize {
			if !errors.Is(err, ErrShortEvent) {
				t.Fatalf("%d bytes: %v", len(raw), err)
			}
			return
		}
		if err != nil {
			if !errors.Is(err, ErrUnknownEvent) {
				t.Fatal(err)
			}
			return
		}
		// Every field round-trips.
		want := raw[:EventSize]
		if enc := EncodeEvent(nil, &got); !bytes.Equal(enc, want) {
			t.Fatalf("re-encoded\n% x\nwant\n% x", enc, want)
		}
	})
}

// BenchmarkDecodeEvent decodes a stream of records too large for the cache into a
// batch, as the ring reader does under load.
func BenchmarkDecodeEvent(b *testing.B) {
	ev := sampleEvent()
	raw := make([][]byte, 1<<14)
	for i := range raw {
		ev.MessageID = uint64(i)
		raw[i] = EncodeEvent(nil, &ev)
	}
	batch := make([]event.Event, 1024)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := DecodeEvent(raw[i%len(raw)], &batch[i%len(batch)]); err != nil {
			b.Fatal(err)
		}
	}
}
