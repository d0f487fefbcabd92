//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"

	"github.com/linuxdiag/aod/internal/proto"
)

// NFSProbes are the NFS client programs (nfs.c) and their maps, writing to the ring
// and counters of the Probes that loaded them (Probes.LoadNFS): an NFS record is a
// ring record with Protocol proto.NFS, an NFS loss counts in Probes.Counters. Methods
// are safe for concurrent use.
type NFSProbes struct {
	objs aodnfsObjects

	attachMu sync.Mutex // guards links
	links    []link.Link

	mu       sync.Mutex // guards the scratch buffers
	histKeys []aodnfsNfsKey
	histVals []aodnfsNfsHistVal
	errKeys  []aodnfsNfsKey
	errVals  []uint64
}

// The NFS procedure codes the loader writes, as include/aod.h defines them
// (AOD_NFS_V3_BASE, AOD_NFS_OTHER) and internal/nfs names them (nfs.V3Base, nfs.Other;
// a test holds them equal). Package bpf does not import internal/nfs: importing it
// registers NFS's name table, which makes the agent's stages handle NFS.
const (
	nfsV4Procedures = 96
	nfsOther        = 127
)

// nfsTracepoint is a tracepoint of the NFS programs, the module that has it and the
// prototype the program assumes.
type nfsTracepoint struct {
	name, module string
	args         []protoArg
	required     bool
}

// nfsTracepoints are the NFS programs' tracepoints, in the order of NFSProbes.programs:
// the RPC completion (required), the failures without a request, the NFS status of a
// failed reply (nfs module: NFSv3; nfsv4 module: NFSv4), then the transport's connects
// and the ends of its connections (which tell a reconnect from a connect), and the
// creation of a transport (whose id may be a destroyed one's).
var nfsTracepoints = [...]nfsTracepoint{
	{"rpc_stats_latency", "sunrpc", []protoArg{argPtr, argU64, argU64, argU64}, true}, // task, backlog, rtt, execute
	{"rpc_call_rpcerror", "sunrpc", []protoArg{argPtr, argU32, argU32}, false},        // task, tk_status, rpc_status
	{"nfs_xdr_status", "nfs", []protoArg{argPtr, argU32}, false},                      // xdr, error
	{"nfs4_xdr_status", "nfsv4", []protoArg{argPtr, argU32, argU32}, false},           // xdr, op, error
	{"rpc_socket_connect", "sunrpc", []protoArg{argPtr, argPtr, argU32}, false},       // xprt, socket, error
	{"xprt_disconnect_force", "sunrpc", []protoArg{argPtr}, false},                    // xprt
	{"xprt_disconnect_auto", "sunrpc", []protoArg{argPtr}, false},                     // xprt
	{"xprt_create", "sunrpc", []protoArg{argPtr}, false},                              // xprt
}

// LoadNFS loads the NFS client programs through the verifier onto p's ring, counters
// and wake-up policy. Their structure reads are relocated (CO-RE) against
// opts.KernelTypes or the running kernel's BTF, which on Debian 6.1 and 6.12 has the
// sunrpc structures in vmlinux itself, so loading does not wait for the module;
// Attach does. Nothing is attached yet.
func (p *Probes) LoadNFS(opts NFSOptions) (*NFSProbes, error) {
	if opts.HistogramEntries == 0 {
		opts.HistogramEntries = p.opts.HistogramEntries
	}
	if opts.ErrorEntries == 0 {
		opts.ErrorEntries = p.opts.ErrorEntries
	}
	spec, err := loadAodnfs()
	if err != nil {
		return nil, fmt.Errorf("bpf: %w", err)
	}
	spec.Maps[aodnfsMapNfsHistograms].MaxEntries = opts.HistogramEntries
	spec.Maps[aodnfsMapNfsErrors].MaxEntries = opts.ErrorEntries
	allocOnInsert(spec.Maps[aodnfsMapNfsHistograms], spec.Maps[aodnfsMapNfsErrors])
	spec.Maps[aodnfsMapEvents].MaxEntries = p.opts.RingBytes
	if err := spec.Variables[aodnfsVarWakeupEvery].Set(p.opts.WakeupEvery); err != nil {
		return nil, fmt.Errorf("bpf: set wakeup_every: %w", err)
	}
	if opts.Port == 0 {
		opts.Port = 2049
	}
	if err := spec.Variables[aodnfsVarNfsPort].Set(opts.Port); err != nil {
		return nil, fmt.Errorf("bpf: set nfs_port: %w", err)
	}
	m := &p.objs.aodMaps
	n := &NFSProbes{}
	err = spec.LoadAndAssign(&n.objs, &ebpf.CollectionOptions{
		MapReplacements: map[string]*ebpf.Map{
			aodnfsMapCounters:  m.Counters,
			aodnfsMapEvents:    m.Events,
			aodnfsMapWakeupSeq: m.WakeupSeq,
		},
		Programs: ebpf.ProgramOptions{KernelTypes: opts.KernelTypes},
	})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("bpf: the verifier rejected the NFS probes: %+v", ve)
		}
		return nil, fmt.Errorf("bpf: load the NFS probes (they need BTF for the sunrpc structures): %w", err)
	}
	identity := make([]uint16, nfsV4Procedures)
	for i := range identity {
		identity[i] = uint16(i)
	}
	if err := n.SetV4Procedures(identity); err != nil {
		n.objs.Close()
		return nil, err
	}
	return n, nil
}

// SetV4Procedures sets how the running kernel's NFSv4 client procedure indexes (the
// rpc_procinfo p_statidx) map to procedure codes: codes[i] is the code of index i,
// as nfs.Canonical gives it from the kernel's order (the per-op list of an NFSv4 mount
// in /proc/self/mountstats); indexes past codes map to nfs.Other. LoadNFS starts with
// the order of Linux 6.1 and 6.12, where index and code are equal. Kernels that
// inserted procedures (7.3: ZERO_RANGE at 57) need their order set, or their RPCs
// from that index on are named as their neighbours.
func (n *NFSProbes) SetV4Procedures(codes []uint16) error {
	if len(codes) > nfsV4Procedures {
		return fmt.Errorf("bpf: %d NFSv4 procedures, more than the %d the probes map", len(codes), nfsV4Procedures)
	}
	for i := range nfsV4Procedures {
		code := uint16(nfsOther)
		if int(i) < len(codes) {
			code = codes[i]
		}
		if err := n.objs.Nfs4Codes.Put(uint32(i), code); err != nil {
			return fmt.Errorf("bpf: set NFSv4 procedure %d: %w", i, err)
		}
	}
	return nil
}

// Attach attaches every NFS program whose tracepoint exists now, after checking its
// prototype against the module's BTF where there is BTF, and reports each. The
// tracepoints are in the sunrpc, nfs and nfsv4 modules, which load with the first
// mount (or nfsd): a caller attaches again, after Detach, once they are loaded. It
// fails, leaving nothing attached, when rpc_stats_latency cannot be attached.
func (n *NFSProbes) Attach() ([]TracepointStatus, error) {
	return n.attach(btf.LoadKernelModuleSpec)
}

func (n *NFSProbes) attach(loadBTF func(module string) (*btf.Spec, error)) ([]TracepointStatus, error) {
	n.attachMu.Lock()
	defer n.attachMu.Unlock()
	if len(n.links) > 0 {
		return nil, errors.New("bpf: NFS probes already attached")
	}
	progs := n.programs()
	report := make([]TracepointStatus, len(nfsTracepoints))
	var links []link.Link
	for i, tp := range nfsTracepoints {
		st := &report[i]
		*st = TracepointStatus{Name: tp.name, Required: tp.required}
		if spec, err := loadBTF(tp.module); err == nil {
			st.Verified, st.Err = checkProto(spec, tp.name, tp.args)
		}
		if st.Err == nil {
			l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: tp.name, Program: progs[i]})
			if err == nil {
				st.Attached = true
				links = append(links, l)
				continue
			}
			st.Err = fmt.Errorf("%w (module %s)", describeAttachError(err), tp.module)
		}
		if tp.required {
			closeLinks(links)
			return report, fmt.Errorf("bpf: attach %s: %w", tp.name, st.Err)
		}
	}
	n.links = links
	return report, nil
}

// Detach detaches every NFS program; the maps keep their contents.
func (n *NFSProbes) Detach() {
	n.attachMu.Lock()
	defer n.attachMu.Unlock()
	closeLinks(n.links)
	n.links = nil
}

// Close detaches the programs and releases them and the NFS maps (not the ring or
// counters, which belong to the Probes).
func (n *NFSProbes) Close() error {
	n.Detach()
	return n.objs.Close()
}

// SetThresholds replaces the per-procedure latency thresholds, indexed by NFS
// procedure code (internal/nfs); the change applies to the next RPC.
func (n *NFSProbes) SetThresholds(t *[proto.MaxCommands]Threshold) error {
	for code, th := range t {
		if th.Latency < 0 {
			return fmt.Errorf("bpf: negative threshold %v for %s", th.Latency, proto.Command{Protocol: proto.NFS, Code: uint16(code)})
		}
	}
	for code, th := range t {
		v := aodnfsThreshold{Ns: uint64(th.Latency)}
		if th.Tracked {
			v.Enabled = 1
		}
		if err := n.objs.NfsThresholds.Put(uint32(code), &v); err != nil {
			return fmt.Errorf("bpf: set threshold of %s: %w", proto.Command{Protocol: proto.NFS, Code: uint16(code)}, err)
		}
	}
	return nil
}

// SetErrorFilter replaces the set of failed RPCs that become error events; it
// applies to the next RPC. Statuses are NFS statuses (NFS3ERR_*, NFS4ERR_*), Errnos
// the positive errno of an RPC's task status; All selects every failure.
func (n *NFSProbes) SetErrorFilter(f ErrorFilter) error {
	return setErrorFilter(f, n.objs.NfsConfig, n.objs.NfsTrackedStatuses, n.objs.NfsTrackedErrnos)
}

// Histograms appends to dst[:0] one sample per (RPC client, procedure, status),
// cumulative since load.
func (n *NFSProbes) Histograms(dst []NFSHistogramSample) ([]NFSHistogramSample, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	dst = dst[:0]
	err := forEachBatch(n.objs.NfsHistograms, &n.histKeys, &n.histVals,
		func(k *aodnfsNfsKey, v *aodnfsNfsHistVal) {
			dst = append(dst, NFSHistogramSample{HistogramSample: HistogramSample{Protocol: proto.NFS}})
			s := &dst[len(dst)-1]
			s.Command, s.SessionID, s.Status = k.Command, uint64(k.ClientId), k.Status
			s.addSlots(&v.Hist.Slots, v.Hist.SumNs)
			s.Retransmissions, s.Timeouts = v.Retransmissions, v.Timeouts
			s.total()
		})
	if err != nil {
		return dst, fmt.Errorf("bpf: read NFS histograms: %w", err)
	}
	return dst, nil
}

// Errors appends to dst[:0] one sample per (RPC client, procedure, status) failure
// count, cumulative; SessionID is the RPC client id.
func (n *NFSProbes) Errors(dst []ErrorSample) ([]ErrorSample, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	dst = dst[:0]
	err := forEachBatch(n.objs.NfsErrors, &n.errKeys, &n.errVals,
		func(k *aodnfsNfsKey, c *uint64) {
			dst = append(dst, ErrorSample{Protocol: proto.NFS, Command: k.Command, SessionID: uint64(k.ClientId), Status: k.Status, Count: *c})
		})
	if err != nil {
		return dst, fmt.Errorf("bpf: read NFS errors: %w", err)
	}
	return dst, nil
}

// ProgramStats returns each NFS program's kernel statistics by name (aod_rpc_stats,
// aod_rpc_error, aod_nfs_xdr_status, aod_nfs4_xdr_status, aod_nfs_connect,
// aod_nfs_disconnect_force, aod_nfs_disconnect_auto, aod_nfs_xprt_create); see
// Probes.ProgramStats.
func (n *NFSProbes) ProgramStats() (map[string]*ebpf.ProgramStats, error) {
	names := [...]string{aodnfsProgAodRpcStats, aodnfsProgAodRpcError, aodnfsProgAodNfsXdrStatus, aodnfsProgAodNfs4XdrStatus,
		aodnfsProgAodNfsConnect, aodnfsProgAodNfsDisconnectForce, aodnfsProgAodNfsDisconnectAuto,
		aodnfsProgAodNfsXprtCreate}
	byName := make(map[string]*ebpf.Program, len(names))
	for i, p := range n.programs() {
		byName[names[i]] = p
	}
	return programStats(byName)
}

// programs returns the programs in the order of nfsTracepoints.
func (n *NFSProbes) programs() [len(nfsTracepoints)]*ebpf.Program {
	o := &n.objs
	return [...]*ebpf.Program{o.AodRpcStats, o.AodRpcError, o.AodNfsXdrStatus, o.AodNfs4XdrStatus, o.AodNfsConnect,
		o.AodNfsDisconnectForce, o.AodNfsDisconnectAuto, o.AodNfsXprtCreate}
}

// NFSNotLoaded returns the NFS programs' tracepoints as hooks none of which is attached
// because LoadNFS failed with err (on 5.10: no BTF of the sunrpc module to relocate the
// programs' structure reads against).
func NFSNotLoaded(err error) []HookStatus {
	reason, _, _ := strings.Cut(fmt.Sprintf("programs not loaded: %v", err), "\n")
	out := make([]HookStatus, len(nfsTracepoints))
	for i, tp := range nfsTracepoints {
		out[i] = HookStatus{Protocol: "nfs", Hook: tp.name, Reason: reason}
	}
	return out
}
