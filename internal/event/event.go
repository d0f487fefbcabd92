// Package event defines the decoded form of one record the kernel probes pass to
// user space: a slow or failed request of any protocol, or a connection event. It is a plain value
// type with no pointers so that decoding and batching never allocate.
package event

import (
	"strconv"
	"time"

	"github.com/linuxdiag/aod/internal/errno"
	"github.com/linuxdiag/aod/internal/proto"
)

// Kind says what an Event records.
type Kind uint8

// Kinds of events. The values are shared with the BPF programs (bpf/include/aod.h).
const (
	KindSlow         Kind = 1 // a request that completed at or over its command's threshold
	KindError        Kind = 2 // a request that failed with a tracked NTSTATUS
	KindReconnect    Kind = 3 // the kernel client reconnected a session (smb3_reconnect)
	KindConnect      Kind = 4 // a TCP connection to a server was established (smb3_connect_done)
	KindConnectError Kind = 5 // a connection attempt failed (smb3_connect_err)
	KindLost         Kind = 6 // a connection was lost: the server closed it, or it failed (NFS)
	KindClosed       Kind = 7 // the client closed an idle connection (NFS): everyday traffic

	// KindLast is the last kind a record may carry.
	KindLast = KindClosed
)

// String names the kind for logs and attributes.
func (k Kind) String() string {
	switch k {
	case KindSlow:
		return "slow"
	case KindError:
		return "error"
	case KindReconnect:
		return "reconnect"
	case KindConnect:
		return "connect"
	case KindConnectError:
		return "connect_error"
	case KindLost:
		return "lost"
	case KindClosed:
		return "closed"
	}
	return "unknown"
}

// Event is one slow or failed request of a protocol, or one connection event. The
// field names are SMB's; other protocols fill the same slots (see each field).
// Times are CLOCK_MONOTONIC nanoseconds as the kernel's bpf_ktime_get_ns returns them;
// the receiver converts them to wall-clock time.
//
// The fields lie in the order, at the offsets and with the sizes of the ring buffer's
// record (struct event in bpf/include/aod.h), with no padding, so that bpf.DecodeEvent
// copies a record in one move; a test in package bpf keeps them so.
type Event struct {
	StartNs   uint64 // monotonic ns at smb3_cmd_enter (request events)
	EndNs     uint64 // monotonic ns at completion, or when a connection event fired
	SessionID uint64
	MessageID uint64 // SMB mid
	ConnID    uint64 // connection id (connection events)
	Pid       uint32 // thread id that issued the request (captured at smb3_cmd_enter)
	Tgid      uint32 // process id that issued the request
	TreeID    uint32
	Status    uint32 // the protocol's failure status (NTSTATUS); 0 for a successful slow request
	Rc        int32  // -errno the kernel mapped the status to (smb3_cmd_err), or connect_err rc
	Command   uint16 // the protocol's command code (SMB2 command); request events only
	Kind      Kind
	Protocol  proto.Protocol // whose request or connection this is
	Comm      [16]byte
	Server    [64]byte // server host name, NUL-terminated (connection events)
	// CgroupID is the cgroup v2 id (the cgroup directory's inode number) of the task
	// that issued the request, 0 if unknown; internal/podattr names its pod or container.
	CgroupID uint64
}

// Cmd returns the request's command as a named value.
func (e *Event) Cmd() proto.Command { return proto.Command{Protocol: e.Protocol, Code: e.Command} }

// Stat returns the request's failure status as a named value.
func (e *Event) Stat() proto.Status { return proto.Status{Protocol: e.Protocol, Code: e.Status} }

// Failure names how a request failed: its status, or the errno the kernel gave when
// it gave no status ("errno 1234" for an unnamed one); "" for a request that did not
// fail.
func (e *Event) Failure() string {
	switch {
	case e.Status != 0:
		return e.Stat().String()
	case e.Rc < 0:
		if n := errno.Name(-e.Rc); n != "" {
			return n
		}
		return "errno " + strconv.Itoa(int(-e.Rc))
	}
	return ""
}

// Latency is the time from the request's enter to its completion.
func (e *Event) Latency() time.Duration {
	if e.EndNs < e.StartNs {
		return 0
	}
	return time.Duration(e.EndNs - e.StartNs)
}

// CommString returns the process name without its NUL padding. It allocates; keep it
// off per-event hot paths.
func (e *Event) CommString() string { return cstring(e.Comm[:]) }

// ServerString returns the server host name of a connection event. It allocates.
func (e *Event) ServerString() string { return cstring(e.Server[:]) }

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
