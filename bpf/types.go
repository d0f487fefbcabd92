package bpf

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cilium/ebpf/btf"

	"github.com/linuxdiag/aod/internal/latencyhist"
	"github.com/linuxdiag/aod/internal/proto"
)

// ErrUnsupported is returned by Load where the probes cannot run (not Linux).
var ErrUnsupported = errors.New("bpf: aod's kernel probes need Linux")

// ErrRequiredTracepoints is returned by Attach when smb3_cmd_enter or smb3_cmd_done
// cannot be attached and the fallback programs cannot replace them: no request can be
// measured.
var ErrRequiredTracepoints = errors.New("bpf: cifs request tracepoints unavailable")

// Defaults for zero Options fields.
const (
	DefaultStartEntries     = 65536
	DefaultHistogramEntries = 4096
	DefaultErrorEntries     = 4096
	// DefaultRingBytes holds about 13,100 events (160 bytes each with the ring's
	// header): only slow or failed requests are recorded, and the reader drains tens of
	// millions a second. The ring is mapped twice into the agent, so it counts double in
	// its resident memory.
	DefaultRingBytes          = 2 << 20
	DefaultWakeupEvery        = 64
	DefaultModulePollInterval = time.Second
)

// Options sizes the maps and tunes the ring buffer. Zero fields take the defaults.
type Options struct {
	// Logger receives the attach report and the wait for the cifs module
	// (default slog.Default()).
	Logger *slog.Logger
	// StartEntries is the size of the in-flight request table, a power of two (56
	// bytes each). It is 2-way set-associative: when both slots of a request's bucket
	// are taken the older entry is evicted (Counters.StartEvictions) and its
	// completion, if it ever comes, is an orphan.
	StartEntries uint32
	// HistogramEntries bounds the (command, session, tree, NTSTATUS) histograms: one
	// per command a share sees succeed, plus one per status it fails with. Each costs
	// about 1.1 KiB, whatever the number of CPUs (one value shared by all), allocated
	// when first used on Linux 6.1 and later, preallocated before; a full map is
	// counted (Counters.HistogramMapFull), never overwritten.
	HistogramEntries uint32
	// ErrorEntries bounds the (command, session, tree, NTSTATUS) error counters, about
	// 90 bytes each, allocated as HistogramEntries' are.
	ErrorEntries uint32
	// RingBytes is the ring buffer size: a power of two, at least one page.
	RingBytes uint32
	// WakeupEvery is how many records a CPU submits before it forces a reader wake-up
	// (the others do not wake it; a half-full ring also forces one). The reader must
	// therefore read with a deadline: records below the count wait for it.
	WakeupEvery uint32
	// ModulePollInterval is how often Attach looks for the cifs module while waiting.
	ModulePollInterval time.Duration
	// Fallback says when requests are measured by fexit programs on the cifs functions
	// that fire the request tracepoints, instead of by the tracepoints.
	Fallback FallbackMode
}

// FallbackMode says when Attach measures requests with the fallback programs: fexit
// programs on smb2_mid_entry_alloc (request start) and map_smb2_to_linux_error
// (response status mapped), the functions that fire smb3_cmd_enter and
// smb3_cmd_done/err, reading the same SMB2 header fields. They need BTF for the
// cifs module (CONFIG_DEBUG_INFO_BTF_MODULES) and fexit support.
type FallbackMode uint8

const (
	// FallbackAuto uses the fallback only when smb3_cmd_enter or smb3_cmd_done
	// cannot be attached.
	FallbackAuto FallbackMode = iota
	// FallbackOff never uses it: without the request tracepoints Attach fails.
	FallbackOff
	// FallbackForce skips the request tracepoints and uses the fallback (to test
	// it on kernels that have them). The connection tracepoints are attached as usual.
	FallbackForce
)

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.StartEntries == 0 {
		o.StartEntries = DefaultStartEntries
	}
	if o.HistogramEntries == 0 {
		o.HistogramEntries = DefaultHistogramEntries
	}
	if o.ErrorEntries == 0 {
		o.ErrorEntries = DefaultErrorEntries
	}
	if o.RingBytes == 0 {
		o.RingBytes = DefaultRingBytes
	}
	if o.WakeupEvery == 0 {
		o.WakeupEvery = DefaultWakeupEvery
	}
	if o.ModulePollInterval <= 0 {
		o.ModulePollInterval = DefaultModulePollInterval
	}
	return o
}

func (o Options) validate(pageSize int) error {
	if o.StartEntries < 2 || o.StartEntries&(o.StartEntries-1) != 0 {
		return fmt.Errorf("bpf: in-flight table size %d is not a power of two >= 2", o.StartEntries)
	}
	if o.RingBytes < uint32(pageSize) || o.RingBytes&(o.RingBytes-1) != 0 {
		return fmt.Errorf("bpf: ring size %d is not a power of two of at least one page (%d)", o.RingBytes, pageSize)
	}
	return nil
}

// Threshold is one command's slow-request rule in the kernel.
type Threshold struct {
	// Tracked false: the command never produces slow events (it is still measured).
	Tracked bool
	// Latency: a tracked request is slow when its latency is >= Latency (0: all are).
	Latency time.Duration
}

// ErrorFilter selects the failed requests that become error events. A failure is
// still counted in the error map whether or not it is selected.
type ErrorFilter struct {
	All      bool     // every failure
	Statuses []uint32 // NTSTATUS values, e.g. 0xc0000034
	Errnos   []int32  // positive errno values the kernel mapped the status to (rc = -errno)
}

// Counters are the probes' loss and activity counters, summed over CPUs since load.
type Counters struct {
	RingReserveFailures uint64 // events lost: the ring was full
	Orphans             uint64 // completions with no recorded start (evicted, aged out, or began before load)
	DoubleCompletions   uint64 // repeated completions of a completed request, ignored
	EventsFiltered      uint64 // completions neither slow nor failed with a tracked error
	EventsEmitted       uint64 // records submitted to the ring (requests and connection events)
	StartCollisions     uint64 // enters whose request identity was still in flight
	StartEvictions      uint64 // in-flight entries overwritten for lack of room (completion becomes an orphan)
	HistogramMapFull    uint64 // latencies not recorded: histogram map full
	ErrorMapFull        uint64 // failures not counted: error map full
	AgedOut             uint64 // in-flight entries freed by SweepStale: never completed
	// ChainReleased counts in-flight entries freed when a request of their compound
	// before them failed: the client reads no member's result after a failure, so the
	// kernel never completes them (it frees them right away).
	ChainReleased uint64
}

// HistogramSample is one (command, session, tree, NTSTATUS) latency histogram in the
// layout of internal/latencyhist: Buckets[j] is OTel bucket latencyhist.OTelIndex(j)
// at latencyhist.Scale, ZeroCount the latencies at or below
// latencyhist.ZeroThreshold().
type HistogramSample struct {
	Protocol  proto.Protocol // whose requests: the map a sample came from says
	Command   uint16
	SessionID uint64
	TreeID    uint32
	// Status is the status (NTSTATUS for SMB) the requests counted here failed with; 0:
	// they succeeded.
	Status uint32
	// CgroupID is the issuers' cgroup when the probes count per cgroup
	// (Probes.SetPerCgroup; SMB only), else 0.
	CgroupID  uint64
	ZeroCount uint64
	Buckets   [latencyhist.NumBuckets]uint64
	// Count is ZeroCount plus all Buckets, so a snapshot is always self-consistent.
	Count uint64
	// SumNs is the sum of the latencies in nanoseconds. It is read in the same pass as
	// the buckets but not atomically with them: it may include a request or two more.
	SumNs uint64
}

// ErrorSample is the count of failures with one NTSTATUS for one (command, session, tree).
type ErrorSample struct {
	Protocol  proto.Protocol
	Command   uint16
	SessionID uint64
	TreeID    uint32
	Status    uint32
	CgroupID  uint64 // as HistogramSample's
	Count     uint64
}

// InFlightRequest is a request whose start was seen and whose completion was not (yet).
type InFlightRequest struct {
	SessionID uint64
	MessageID uint64
	Command   uint16
	TreeID    uint32
	Pid       uint32 // thread that issued the request
	Tgid      uint32
	Comm      [16]byte
	StartNs   uint64        // CLOCK_MONOTONIC ns at smb3_cmd_enter
	Age       time.Duration // at the time of the snapshot
}

// TracepointStatus reports one tracepoint of the cifs module.
type TracepointStatus struct {
	Name     string // e.g. "smb3_cmd_enter"
	Required bool   // without it nothing is measured
	Attached bool
	// Verified: the tracepoint's prototype was checked against the module's BTF.
	// Without module BTF the kernel's own argument-count check is the only guard.
	Verified bool
	Err      error // why it is not attached
}

// FunctionStatus reports one cifs function a fallback program was attached to.
type FunctionStatus struct {
	Name     string // e.g. "smb2_mid_entry_alloc"
	Attached bool
	Err      error // why it is not attached
}

// AttachReport lists every tracepoint Attach tried, in a fixed order, and the
// functions of the fallback if it was tried (see FallbackMode).
type AttachReport struct {
	Tracepoints []TracepointStatus
	// Fallback is empty unless the fallback was tried; the request tracepoints are
	// then not attached.
	Fallback []FunctionStatus
}

// Attached returns the names of the attached tracepoints, then those of the functions
// the fallback attached to, as "fexit/NAME".
func (r AttachReport) Attached() []string {
	var names []string
	for _, t := range r.Tracepoints {
		if t.Attached {
			names = append(names, t.Name)
		}
	}
	for _, f := range r.Fallback {
		if f.Attached {
			names = append(names, "fexit/"+f.Name)
		}
	}
	return names
}

// NFSOptions tunes LoadNFS. Zero fields take the defaults.
type NFSOptions struct {
	// KernelTypes, when set, is the BTF the programs' structure reads (rpc_task,
	// rpc_clnt, ...) are relocated against instead of the running kernel's vmlinux and
	// modules: the tests use a Debian kernel's (testdata/kernel-*/nfs/sunrpc.btf).
	KernelTypes *btf.Spec
	// HistogramEntries bounds the (RPC client, procedure, status) histograms, about
	// 1.1 KiB each, allocated as Options.HistogramEntries' are (default: the SMB
	// probes' Options.HistogramEntries).
	HistogramEntries uint32
	// ErrorEntries bounds the (RPC client, procedure, status) error counters (default:
	// the SMB probes' Options.ErrorEntries).
	ErrorEntries uint32
	// Port is the server port of the transports whose connects become connection
	// events (default 2049); other RPC clients' (rpcbind, mountd, lockd) are ignored.
	Port uint16
}

// NFSHistogramSample is one (RPC client, procedure, status) histogram:
// SessionID is the RPC client id, Command the NFS procedure code, Status the NFS
// status or, for failures without one, the task's status (-errno) as a uint32; 0:
// succeeded. Retransmissions and Timeouts are the transport's for those RPCs, as
// /proc/self/mountstats counts them per operation.
type NFSHistogramSample struct {
	HistogramSample
	Retransmissions uint64
	Timeouts        uint64
}

// IOScope says which mounts the io probe counts failures on: every mount (All), or
// those whose file system magic is in Magics. Mounts lists the mount points in scope,
// so that a failed absolute path is attributed to the longest one prefixing it; with
// All it lists every mount.
type IOScope struct {
	All    bool
	Magics []uint32
	Mounts []IOMount
}

// IOMount is a mount point and its identity, as /proc/self/mountinfo gives it.
type IOMount struct {
	Point string // absolute, without a trailing '/' (except "/")
	ID    uint32
	Magic uint32
}

// IOErrorFilter says which failed file operations become error events: every one in
// scope (All), or those of a tracked (operation, errno) pair. An Op of -1 stands for
// every operation, an Errno of 0 for every errno below 256.
type IOErrorFilter struct {
	All   bool
	Pairs []IOPair
}

// IOPair is one (operation, errno) pair of an IOErrorFilter.
type IOPair struct {
	Op    int   // io operation code (internal/io), or -1: any
	Errno int32 // positive errno, or 0: any
}

// IOErrorSample is the count of failed file operations of one (mount, operation,
// errno), cumulative since load.
type IOErrorSample struct {
	MountID uint32
	Magic   uint32 // the file system's s_magic
	Op      uint16
	Errno   uint16
	Count   uint64
}

// HookStatus is one hook of aod's programs (a tracepoint, or "fexit/FUNCTION" of the
// fallback) as the agent reports it: attached, or why not.
type HookStatus struct {
	Protocol string `json:"protocol"` // "smb", "nfs"
	Hook     string `json:"hook"`
	Attached bool   `json:"attached"`
	Reason   string `json:"reason,omitempty"` // why it is not attached; empty when it is
}

// Hooks returns the report as hook statuses of protocol: every tracepoint tried, then
// the fallback's functions when it was tried.
func (r AttachReport) Hooks(protocol string) []HookStatus {
	out := TracepointHooks(protocol, r.Tracepoints)
	for _, f := range r.Fallback {
		out = append(out, hookStatus(protocol, "fexit/"+f.Name, f.Attached, f.Err))
	}
	return out
}

// TracepointHooks returns tracepoint statuses (an NFSProbes.Attach report) as hook
// statuses of protocol.
func TracepointHooks(protocol string, sts []TracepointStatus) []HookStatus {
	out := make([]HookStatus, 0, len(sts))
	for _, t := range sts {
		out = append(out, hookStatus(protocol, t.Name, t.Attached, t.Err))
	}
	return out
}

func hookStatus(protocol, hook string, attached bool, err error) HookStatus {
	h := HookStatus{Protocol: protocol, Hook: hook, Attached: attached}
	if !attached {
		h.Reason = "not attached"
		if err != nil {
			h.Reason = err.Error()
		}
	}
	return h
}
