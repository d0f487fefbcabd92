// Package probeaccess gives bpf/bpftest what it needs of a loaded bpf.Probes that is
// not bpf's API: the programs, to run them the way their tracepoints would, and the
// in-flight table, to give a request a start time of the test's choosing. Package bpf
// sets Of when it is initialised; as an internal package, only bpf/... can import it,
// so the production API stays free of test hooks.
package probeaccess

import "github.com/cilium/ebpf"

// Internals are the parts of one bpf.Probes a test harness drives.
type Internals struct {
	// The request programs: smb3_cmd_enter, smb3_cmd_done, smb3_cmd_err.
	CmdEnter, CmdDone, CmdErr *ebpf.Program
	// The connection programs: smb3_reconnect, smb3_connect_done, smb3_connect_err.
	Reconnect, ConnectDone, ConnectErr *ebpf.Program
	// Events is the ring buffer the programs write to.
	Events *ebpf.Map
	// SetStart sets the start time of the in-flight request (session, mid, command) to
	// start(), which is called with the table found and locked, right before the store:
	// a clock read in start is then as close as can be to the completion that follows.
	// It fails if the request is not in flight.
	SetStart func(session, mid uint64, command uint16, start func() uint64) error
	// Now reads the programs' clock (bpf_ktime_get_ns: CLOCK_MONOTONIC).
	Now func() (uint64, error)
}

// Of returns the internals of p, a *bpf.Probes (any: this package cannot import bpf).
// It is nil where bpf cannot load probes (not Linux).
var Of func(p any) Internals

// NFSInternals are the programs of one bpf.NFSProbes, to run as their tracepoints
// would: rpc_stats_latency, rpc_call_rpcerror, nfs_xdr_status, nfs4_xdr_status,
// rpc_socket_connect, xprt_disconnect_force, xprt_disconnect_auto, xprt_create.
type NFSInternals struct {
	RPCStats, RPCError, NFSXdrStatus, NFS4XdrStatus, Connect, ForceClose, AutoClose, Create *ebpf.Program
}

// OfNFS returns the internals of n, a *bpf.NFSProbes; nil where bpf cannot load probes.
var OfNFS func(n any) NFSInternals
