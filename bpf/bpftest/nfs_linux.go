//go:build linux

package bpftest

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/bpf/internal/probeaccess"
	"github.com/linuxdiag/aod/bpf/internal/testprog"
	"github.com/linuxdiag/aod/internal/fixtures"
	"github.com/linuxdiag/aod/internal/proto"
)

// NFSKernels are the kernels whose sunrpc structure layouts NewNFS can relocate the
// NFS programs against and lay out fake RPCs in: the Debian kernels of
// testdata/kernel-<k>/nfs/sunrpc.btf (made by bpf/internal/sunrpcbtf).
var NFSKernels = []string{"6.1", "6.12", "7.3"}

// NFSSlots is how many RPCs can be laid out at once (RPC.Slot): each slot is one
// task address, so an RPC in one slot can be left half done while others run.
const NFSSlots = 4

// slotBytes is the arena space of one slot, and below the places of its structures.
const (
	slotBytes   = 4096
	offTask     = 0
	offProcinfo = 256
	offClnt     = 320
	offRqst     = 832
	offXdr      = 1312
	offServer   = 1400 // the server address string, 64 bytes
	offXprt     = 1536
)

// NFSHarness runs the NFS client programs (bpf.NFSProbes) as the sunrpc and nfs
// tracepoints would, on fake kernel structures it lays out in kernel memory with a
// chosen kernel's field offsets. It embeds the Harness of the probes whose ring and
// counters the NFS programs share: Events and Counters see NFS records and losses.
type NFSHarness struct {
	*Harness
	n    *bpf.NFSProbes
	nin  probeaccess.NFSInternals
	mem  []byte
	base uint64
	off  map[string]uint32 // "struct.member" -> byte offset, from the kernel's BTF
}

// NewNFS loads the probes (opts) and the NFS programs onto them, relocated against
// kernel's sunrpc layout (one of NFSKernels); both are closed when the test ends.
func NewNFS(tb testing.TB, kernel string, opts bpf.Options, nfsOpts bpf.NFSOptions) *NFSHarness {
	tb.Helper()
	h := NewWithOptions(tb, opts)
	raw, err := os.ReadFile(fixtures.Path("kernel-" + kernel + "/nfs/sunrpc.btf"))
	if err != nil {
		tb.Fatal(err)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		tb.Fatal(err)
	}
	nfsOpts.KernelTypes = spec
	n, err := h.p.LoadNFS(nfsOpts)
	testprog.CheckLoad(tb, err)
	tb.Cleanup(func() {
		if err := n.Close(); err != nil {
			tb.Error(err)
		}
	})
	mem, base, err := testprog.Loaded(tb, nil).Arena()
	if err != nil {
		tb.Fatal(err)
	}
	nh := &NFSHarness{Harness: h, n: n, nin: probeaccess.OfNFS(n), mem: mem, base: base, off: map[string]uint32{}}
	for typ, err := range spec.All() {
		if err != nil {
			tb.Fatal(err)
		}
		if s, ok := typ.(*btf.Struct); ok {
			for _, m := range s.Members {
				nh.off[s.Name+"."+m.Name] = m.Offset.Bytes()
			}
		}
	}
	return nh
}

// NFS returns the NFS probes, to hand to the code under test.
func (h *NFSHarness) NFS() *bpf.NFSProbes { return h.n }

// RPC is one NFS RPC as the kernel's rpc_task shows it when it completes.
type RPC struct {
	Slot    int    // which task address (0..NFSSlots-1)
	Client  uint32 // rpc_clnt cl_clid
	Program uint32 // cl_prog; 0: NFS (100003)
	Version uint32 // cl_vers: 3 or 4
	Proc    uint32 // the procedure's p_statidx: NFS3PROC_*, NFSPROC4_CLNT_*, ACLPROC3_*
	Xid     uint32 // host order (the trace's xid=0x...)
	Status  int32  // tk_status: < 0 failed
	// Latency is the kernel's execute time, rpc_stats_latency's last argument.
	Latency       time.Duration
	Transmissions int32  // rq_ntrans
	Timeouts      uint16 // tk_timeouts
	Owner         int32  // tk_owner; 0: the test process
	XprtID        uint32 // rpc_xprt id
	Server        string // the transport's RPC_DISPLAY_ADDR, at most 63 bytes
	Port          uint16 // the transport's server port (an IPv4 address); 0: 2049
	NoRequest     bool   // tk_rqstp NULL: failed before it had a request slot
	StartNs       uint64 // tk_start (CLOCK_MONOTONIC ns), for RPCError
}

// TaskAddr is the kernel address of the rpc_task of a slot.
func (h *NFSHarness) TaskAddr(slot int) uint64 { return h.base + uint64(slot)*slotBytes + offTask }

// lay writes r's task, client, procedure, request, transport and xdr_stream into its
// slot and returns the slot's base address.
func (h *NFSHarness) lay(r RPC) uint64 {
	h.tb.Helper()
	if r.Slot < 0 || r.Slot >= NFSSlots || len(r.Server) > 63 {
		h.tb.Fatalf("bpftest: RPC slot %d or server %q out of range", r.Slot, r.Server)
	}
	if r.Program == 0 {
		r.Program = 100003
	}
	if r.Owner == 0 {
		r.Owner = int32(os.Getpid())
	}
	if r.Port == 0 {
		r.Port = 2049
	}
	mem := h.mem[r.Slot*slotBytes : (r.Slot+1)*slotBytes]
	clear(mem)
	addr := h.base + uint64(r.Slot)*slotBytes
	put := func(at uint32, field string, size int, v uint64) { h.put(r.Slot, at, field, size, v) }
	put(offTask, "rpc_task.tk_status", 4, uint64(uint32(r.Status)))
	put(offTask+h.off["rpc_task.tk_msg"], "rpc_message.rpc_proc", 8, addr+offProcinfo)
	put(offTask, "rpc_task.tk_client", 8, addr+offClnt)
	put(offTask, "rpc_task.tk_xprt", 8, addr+offXprt)
	if !r.NoRequest {
		put(offTask, "rpc_task.tk_rqstp", 8, addr+offRqst)
	}
	put(offTask, "rpc_task.tk_start", 8, r.StartNs)
	put(offTask, "rpc_task.tk_owner", 4, uint64(uint32(r.Owner)))
	put(offTask, "rpc_task.tk_timeouts", 2, uint64(r.Timeouts))
	put(offProcinfo, "rpc_procinfo.p_statidx", 4, uint64(r.Proc))
	put(offClnt, "rpc_clnt.cl_clid", 4, uint64(r.Client))
	put(offClnt, "rpc_clnt.cl_prog", 4, uint64(r.Program))
	put(offClnt, "rpc_clnt.cl_vers", 4, uint64(r.Version))
	put(offRqst, "rpc_rqst.rq_task", 8, addr+offTask)
	binary.BigEndian.PutUint32(mem[offRqst+h.off["rpc_rqst.rq_xid"]:], r.Xid) // __be32
	put(offRqst, "rpc_rqst.rq_ntrans", 4, uint64(uint32(r.Transmissions)))
	put(offXdr, "xdr_stream.rqst", 8, addr+offRqst)
	copy(mem[offServer:], r.Server)
	put(offXprt, "rpc_xprt.address_strings", 8, addr+offServer)
	put(offXprt, "rpc_xprt.id", 4, uint64(r.XprtID))
	put(offXprt, "rpc_xprt.addr", 2, 2) // AF_INET
	binary.BigEndian.PutUint16(mem[offXprt+h.off["rpc_xprt.addr"]+2:], r.Port)
	return addr
}

// put writes v, size bytes little-endian, into the field ("struct.member", at the
// kernel's offset) of the structure at offset at of slot's memory.
func (h *NFSHarness) put(slot int, at uint32, field string, size int, v uint64) {
	h.tb.Helper()
	off, ok := h.off[field]
	if !ok {
		h.tb.Fatalf("bpftest: no %s in the kernel's layout", field)
	}
	b := h.mem[slot*slotBytes+int(at+off):]
	le := binary.LittleEndian
	switch size {
	case 2:
		le.PutUint16(b, uint16(v))
	case 4:
		le.PutUint32(b, uint32(v))
	default:
		le.PutUint64(b, v)
	}
}

// Stats runs rpc_stats_latency for r: the RPC completed (backlog and rtt 0).
func (h *NFSHarness) Stats(r RPC) {
	h.tb.Helper()
	addr := h.lay(r)
	h.args[0], h.args[1], h.args[2], h.args[3] = addr+offTask, 0, 0, uint64(r.Latency)
	h.exec(h.nin.RPCStats, 4)
}

// RPCError runs rpc_call_rpcerror for r with its Status: the RPC failed at the RPC
// level (with NoRequest, before it had a request, so no rpc_stats_latency follows).
func (h *NFSHarness) RPCError(r RPC) {
	h.tb.Helper()
	addr := h.lay(r)
	h.args[0], h.args[1], h.args[2] = addr+offTask, uint64(int64(r.Status)), 0
	h.exec(h.nin.RPCError, 3)
}

// XdrStatus runs nfs4_xdr_status (r.Version 4, with op, the NFSv4 operation) or
// nfs_xdr_status for r's reply, failed with the NFS status nfsStatus. It lays r out
// as Stats does; call Stats with the same RPC (or a changed one) to complete it.
func (h *NFSHarness) XdrStatus(r RPC, nfsStatus, op uint32) {
	h.tb.Helper()
	addr := h.lay(r)
	if r.Version == 4 {
		h.args[0], h.args[1], h.args[2] = addr+offXdr, uint64(op), uint64(nfsStatus)
		h.exec(h.nin.NFS4XdrStatus, 3)
		return
	}
	h.args[0], h.args[1] = addr+offXdr, uint64(nfsStatus)
	h.exec(h.nin.NFSXdrStatus, 2)
}

// Disconnect runs xprt_disconnect_force (forced: the server closed the connection or
// the socket failed) or xprt_disconnect_auto (the client closes it) for r's transport;
// waiting says whether requests are awaiting their reply then (its recv_queue is not
// empty).
func (h *NFSHarness) Disconnect(r RPC, forced, waiting bool) {
	h.tb.Helper()
	addr := h.lay(r)
	if waiting {
		// Any non-NULL rb_node: the programs only test the tree for emptiness.
		h.put(r.Slot, offXprt, "rpc_xprt.recv_queue", 8, addr+offRqst)
	}
	h.args[0] = addr + offXprt
	if forced {
		h.exec(h.nin.ForceClose, 1)
		return
	}
	h.exec(h.nin.AutoClose, 1)
}

// CreateTransport runs xprt_create for r's transport: a new transport with its id.
func (h *NFSHarness) CreateTransport(r RPC) {
	h.tb.Helper()
	h.args[0] = h.lay(r) + offXprt
	h.exec(h.nin.Create, 1)
}

// SocketConnect runs rpc_socket_connect for r's transport (XprtID, Server, Port),
// whose connect returned err.
func (h *NFSHarness) SocketConnect(r RPC, err int32) {
	h.tb.Helper()
	addr := h.lay(r)
	h.args[0], h.args[1], h.args[2] = addr+offXprt, 0, uint64(int64(err))
	h.exec(h.nin.Connect, 3)
}

// NFSHistograms returns the NFS latency histograms.
func (h *NFSHarness) NFSHistograms() []bpf.NFSHistogramSample {
	h.tb.Helper()
	s, err := h.n.Histograms(nil)
	if err != nil {
		h.tb.Fatal(err)
	}
	return s
}

// NFSErrors returns the NFS failure counts.
func (h *NFSHarness) NFSErrors() []bpf.ErrorSample {
	h.tb.Helper()
	s, err := h.n.Errors(nil)
	if err != nil {
		h.tb.Fatal(err)
	}
	return s
}

// SetNFSThresholds makes exactly the given NFS procedure codes produce slow events.
func (h *NFSHarness) SetNFSThresholds(set map[uint16]time.Duration) {
	h.tb.Helper()
	var t [proto.MaxCommands]bpf.Threshold
	for code, lat := range set {
		t[code] = bpf.Threshold{Tracked: true, Latency: lat}
	}
	if err := h.n.SetThresholds(&t); err != nil {
		h.tb.Fatal(err)
	}
}

// SetNFSErrorFilter selects the failed RPCs that produce error events.
func (h *NFSHarness) SetNFSErrorFilter(f bpf.ErrorFilter) {
	h.tb.Helper()
	if err := h.n.SetErrorFilter(f); err != nil {
		h.tb.Fatal(err)
	}
}
