package bpf

import (
	"encoding/binary"
	"errors"
	"unsafe"

	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/proto"
)

// EventSize is the size of one ring-buffer record (struct event in include/aod.h).
const EventSize = 152

// Offsets of struct event's fields; a Linux test pins them to the bpf2go type.
const (
	offStartNs   = 0
	offEndNs     = 8
	offSessionID = 16
	offMid       = 24
	offConnID    = 32
	offPid       = 40
	offTgid      = 44
	offTreeID    = 48
	offStatus    = 52
	offRc        = 56
	offCommand   = 60
	offKind      = 62
	offProtocol  = 63
	offComm      = 64
	offServer    = 80
	offCgroupID  = 144
)

// Errors of DecodeEvent. They are fixed values so that decoding never allocates.
var (
	ErrShortEvent   = errors.New("bpf: ring record shorter than an event")
	ErrUnknownEvent = errors.New("bpf: ring record of unknown kind or protocol")
)

// DecodeEvent decodes one ring-buffer record into ev without allocating. A record
// longer than EventSize is accepted (the ring pads records to 8 bytes).
//
// How the record maps onto event.Event:
//   - request events (KindSlow, KindError): StartNs is the enter time; a failure whose
//     enter was never seen (orphan) has StartNs == EndNs, Pid 0 and an empty Comm.
//     Pid, Tgid, Comm and CgroupID are those of the task that issued the request
//     (CgroupID 0 if unknown).
//   - NFS records (Protocol proto.NFS) are RPCs: SessionID is the RPC client id,
//     MessageID packs xid, version, retransmissions and timeouts (SplitNFSMessageID),
//     TreeID is the NFSv4 operation a failure came with, Status the NFS status, Rc the
//     task's status; CgroupID is set only with Pid (the issuer completed the RPC
//     itself); see include/aod.h.
//   - connection events: EndNs (== StartNs) is when the tracepoint fired; ConnID and
//     Server are set, MessageID is the connection's current mid for KindReconnect and
//     Rc the error for KindConnectError; Pid, Tgid and Comm are the task that fired it.
//     NFS's KindLost and KindClosed (how a transport's connection ended) are
//     connection events too, with ConnID the transport id.
func DecodeEvent(raw []byte, ev *event.Event) error {
	if len(raw) < EventSize {
		return ErrShortEvent
	}
	kind := event.Kind(raw[offKind])
	protocol := proto.Protocol(raw[offProtocol])
	if kind < event.KindSlow || kind > event.KindLast || !protocol.Valid() {
		return ErrUnknownEvent
	}
	// event.Event lies as struct event does (TestEventLayoutMatchesTheKernel), and every
	// bit pattern of its fields is a valid value: the record is the event, byte for
	// byte, in the host's byte order (little-endian: aod's objects are bpfel). One
	// copy, where decoding field by field took twice as long.
	*(*[EventSize]byte)(unsafe.Pointer(ev)) = [EventSize]byte(raw)
	return nil
}

// EncodeEvent writes ev as a ring-buffer record into dst[:EventSize], the inverse of
// DecodeEvent, and returns that slice; dst needs room for EventSize bytes or a new
// slice is allocated. It lets tests feed readers records exactly as the kernel lays
// them out.
func EncodeEvent(dst []byte, ev *event.Event) []byte {
	if cap(dst) < EventSize {
		dst = make([]byte, EventSize)
	}
	raw := dst[:EventSize]
	le := binary.LittleEndian
	le.PutUint64(raw[offStartNs:], ev.StartNs)
	le.PutUint64(raw[offEndNs:], ev.EndNs)
	le.PutUint64(raw[offSessionID:], ev.SessionID)
	le.PutUint64(raw[offMid:], ev.MessageID)
	le.PutUint64(raw[offConnID:], ev.ConnID)
	le.PutUint32(raw[offPid:], ev.Pid)
	le.PutUint32(raw[offTgid:], ev.Tgid)
	le.PutUint32(raw[offTreeID:], ev.TreeID)
	le.PutUint32(raw[offStatus:], ev.Status)
	le.PutUint32(raw[offRc:], uint32(ev.Rc))
	le.PutUint16(raw[offCommand:], ev.Command)
	le.PutUint64(raw[offCgroupID:], ev.CgroupID)
	raw[offKind] = byte(ev.Kind)
	raw[offProtocol] = byte(ev.Protocol)
	copy(raw[offComm:], ev.Comm[:])
	copy(raw[offServer:], ev.Server[:])
	return raw
}

// SplitNFSMessageID splits the MessageID of an NFS record (struct event's mid, packed
// by nfs.c): the RPC's xid (host order, as the sunrpc trace prints it), its RPC
// version (3, 4), the retransmissions it took (capped at 255) and the major timeouts
// it met (capped at 65535).
func SplitNFSMessageID(mid uint64) (xid uint32, version, retransmissions uint8, timeouts uint16) {
	return uint32(mid), uint8(mid >> 32), uint8(mid >> 40), uint16(mid >> 48)
}
