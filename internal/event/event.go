// Package event defines the decoded form of one record the kernel probes pass to
// user space: a slow or failed SMB request, or a connection event. It is a plain value
// type with no pointers so that decoding and batching never allocate.
package event

import "time"

// Kind says what an Event records.
type Kind uint8

// Kinds of events. The values are shared with the BPF programs (bpf/include/aod.h).
const (
	KindSlow         Kind = 1 // a request that completed at or over its command's threshold
	KindError        Kind = 2 // a request that failed with a tracked NTSTATUS
	KindReconnect    Kind = 3 // the kernel client reconnected a session (smb3_reconnect)
	KindConnect      Kind = 4 // a TCP connection to a server was established (smb3_connect_done)
	KindConnectError Kind = 5 // a connection attempt failed (smb3_connect_err)
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
	}
	return "unknown"
}

// Event is one slow or failed SMB request, or one connection event.
// Times are CLOCK_MONOTONIC nanoseconds as the kernel's bpf_ktime_get_ns returns them;
// the receiver converts them to wall-clock time.
type Event struct {
	Kind      Kind
	Command   uint16 // SMB2 command code (0..18); request events only
	Status    uint32 // NTSTATUS; 0 for a successful slow request
	Rc        int32  // -errno the kernel mapped the status to (smb3_cmd_err), or connect_err rc
	Pid       uint32 // thread id that issued the request (captured at smb3_cmd_enter)
	Tgid      uint32 // process id that issued the request
	Comm      [16]byte
	SessionID uint64
	TreeID    uint32
	MessageID uint64   // SMB mid
	ConnID    uint64   // connection id (connection events)
	StartNs   uint64   // monotonic ns at smb3_cmd_enter (request events)
	EndNs     uint64   // monotonic ns at completion, or when a connection event fired
	Server    [64]byte // server host name, NUL-terminated (connection events)
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
