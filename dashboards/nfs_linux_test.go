package dashboards

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/bpf/bpftest"
	"github.com/linuxdiag/aod/internal/fixtures"
	"github.com/linuxdiag/aod/internal/nfs"
)

// The NFS mounts of testdata/kernel-6.12/nfs/mountstats.after, a real
// /proc/self/mountstats of kernel 6.12 after a workload on two mounts of the kernel
// NFS server on 127.0.0.1.
const (
	nfs4Mount = "/mnt/n4" // 127.0.0.1:/, NFSv4.2
	nfs3Mount = "/mnt/n3" // 127.0.0.1:/srv/nfs, NFSv3
)

// rpcLoad is one kind of NFS RPC a host completes on a mount in every round: the
// kernel's probes see each RPC complete, and the mount's mountstats counters grow by it.
type rpcLoad struct {
	mount, op string
	n         int           // RPCs per round
	rtt, exec time.Duration // of each RPC; exec is also what the probes measure
	retrans   int           // retransmissions per round
	timeouts  int           // major timeouts per round
	read      int           // bytes read from the server per RPC
	written   int           // bytes written to the server per RPC
	// Every failEvery-th RPC of a round, the first included, fails with status: the
	// NFS status (NFS4ERR_ name) the server answered, or the errno name of an RPC that
	// failed in the client. errno is the task status the client ends the RPC with.
	status    string
	errno     unix.Errno
	failEvery int
}

// failures is how many of a round's RPCs fail.
func (l rpcLoad) failures() int {
	if l.failEvery == 0 {
		return 0
	}
	return (l.n + l.failEvery - 1) / l.failEvery
}

// healthyRPCs is ordinary NFS traffic on both mounts: reads, writes and attribute
// checks answered in milliseconds, and lookups of names that do not exist.
var healthyRPCs = []rpcLoad{
	{mount: nfs4Mount, op: "READ", n: 4, rtt: 2 * ms, exec: 3 * ms, read: ioSize},
	{mount: nfs4Mount, op: "WRITE", n: 3, rtt: 4 * ms, exec: 5 * ms, written: ioSize},
	{mount: nfs4Mount, op: "GETATTR", n: 6, rtt: time.Millisecond, exec: time.Millisecond},
	{mount: nfs4Mount, op: "LOOKUP", n: 2, rtt: time.Millisecond, exec: 1500 * us,
		status: "NFS4ERR_NOENT", errno: unix.ENOENT, failEvery: 2},
	{mount: nfs3Mount, op: "READ", n: 4, rtt: 2 * ms, exec: 3 * ms, read: ioSize},
	{mount: nfs3Mount, op: "WRITE", n: 2, rtt: 4 * ms, exec: 6 * ms, written: ioSize},
	{mount: nfs3Mount, op: "GETATTR", n: 5, rtt: time.Millisecond, exec: 2 * ms},
	{mount: nfs3Mount, op: "LOOKUP", n: 3, rtt: time.Millisecond, exec: 2 * ms,
		status: "NFS4ERR_NOENT", errno: unix.ENOENT, failEvery: 3},
}

// notResponding is what a sick NFS server adds on the v3 mount, a soft mount: reads
// that wait out a major timeout ("server not responding") and are sent again, one
// slowly answered and one given up on (ETIMEDOUT).
var notResponding = rpcLoad{mount: nfs3Mount, op: "READ", n: 2, rtt: 900 * ms, exec: 61 * time.Second,
	retrans: 3, timeouts: 1, read: ioSize, status: "ETIMEDOUT", errno: unix.ETIMEDOUT, failEvery: 2}

// staleHandles is the sick server's other symptom: it re-exported the v3 mount's
// file system, and every file handle the client holds is stale.
var staleHandles = rpcLoad{mount: nfs3Mount, op: "GETATTR", n: 25, rtt: time.Millisecond, exec: time.Millisecond,
	status: "NFS4ERR_STALE", errno: unix.ESTALE, failEvery: 1}

// leaseRenewal is the NFSv4 client's lease renewal: a SEQUENCE a round from the
// client's lease RPC client, which serves no mount, so mountstats never counts it and
// its RPCs have no export.
var leaseRenewal = rpcLoad{op: "SEQUENCE", n: 1, exec: 400 * us}

// nfsServer is the server of both mounts, as their devices name it.
const nfsServer = "127.0.0.1"

// nfsClients are the RPC clients (the kernel's rpc_clnt, one per mount) of the
// hosts' probes, by mount point: the agent learns which mount each serves from
// mountstats. The lease client ("") serves none.
var nfsClients = map[string]struct {
	id, version uint32
	export      string
}{
	nfs4Mount: {id: 4, version: 4, export: "/"},
	nfs3Mount: {id: 6, version: 3, export: "/srv/nfs"},
	"":        {id: 2, version: 4},
}

// nfs4Ops are the NFSv4 operations whose failures the loads have: the operation
// nfs4_xdr_status reports the status of.
var nfs4Ops = map[string]uint32{"LOOKUP": 15}

// rpcKey is one kind of RPC the probes measured, as the request metrics label it.
type rpcKey struct {
	command, server, share, errorType string
	latency                           time.Duration
}

// command is the name aod gives l's procedure, and its code as the kernel's
// rpc_procinfo p_statidx gives it: NFSv3's procedure number, or the NFSv4 procedure's
// index in the kernel's list, which is the order mountstats prints for every NFSv4
// mount (the agent reads it there).
func (m *mountStats) command(t *testing.T, l rpcLoad) (string, uint32) {
	t.Helper()
	if nfsClients[l.mount].version == 3 {
		code, ok := nfs.Table.LookupCommand("NFS3PROC_" + l.op)
		if !ok {
			t.Fatalf("no NFSv3 procedure %s", l.op)
		}
		return nfs.Table.CommandName(code), uint32(code - nfs.V3Base)
	}
	for i, op := range m.opOrder(t, nfs4Mount) {
		if op == l.op {
			return nfs.Table.CommandName(nfs.V4Code(op)), uint32(i)
		}
	}
	t.Fatalf("mountstats.after lists no NFSv4 procedure %s", l.op)
	return "", 0
}

// opOrder returns the operations of mount's per-op statistics, in the template's order.
func (m *mountStats) opOrder(t *testing.T, mount string) []string {
	t.Helper()
	var ops []string
	var in, perOp bool
	for line := range strings.Lines(m.template) {
		body := strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(body, "device "); ok {
			in, perOp = strings.Contains(rest, " mounted on "+mount+" "), false
			continue
		}
		if !in {
			continue
		}
		if body == "per-op statistics" {
			perOp = true
			continue
		}
		if op, _, ok := strings.Cut(body, ":"); ok && perOp {
			ops = append(ops, op)
		}
	}
	if len(ops) == 0 {
		t.Fatalf("mountstats.after has no per-op statistics for %s", mount)
	}
	return ops
}

// runRPCs completes one round of l through the host's NFS probes, as the kernel
// would, and counts what they measured in h.fed.
func (h *host) runRPCs(l rpcLoad) {
	h.t.Helper()
	c := nfsClients[l.mount]
	name, proc := h.nfs.command(h.t, l)
	for i := range l.n {
		h.xid++
		r := bpftest.RPC{Client: c.id, Version: c.version, Proc: proc, Xid: h.xid, Latency: l.exec,
			Transmissions: 1, Server: nfsServer}
		k := rpcKey{command: name, share: c.export, latency: l.exec}
		if c.export != "" {
			k.server = nfsServer
		}
		if l.failEvery > 0 && i%l.failEvery == 0 {
			r.Status, k.errorType = -int32(l.errno), l.status
			code, ok := nfs.LookupStatus(l.status)
			if !ok {
				h.t.Fatalf("unknown NFS status %s", l.status)
			}
			if int32(code) > 0 { // answered by the server, not an RPC-level failure
				h.nfsh.XdrStatus(r, code, nfs4Ops[l.op])
			}
		}
		h.nfsh.Stats(r)
		h.fed[k]++
	}
}

// opCounters are one operation's mountstats counters the test moves.
type opCounters struct {
	ops, trans, timeouts, errors int
	rttMs, execMs                int64
}

// mountStats is a host's /proc/self/mountstats: the kernel-6.12 file with the
// counters its NFS traffic has moved added on.
type mountStats struct {
	path     string
	template string
	ops      map[[2]string]*opCounters // by mount point, operation
	connects map[string]int            // transport connects by mount point
	read     map[string]int            // bytes from the server by mount point
	written  map[string]int            // bytes to the server by mount point
}

func newMountStats(t *testing.T, dir string) *mountStats {
	t.Helper()
	b, err := os.ReadFile(fixtures.Path("kernel-6.12", "nfs", "mountstats.after"))
	if err != nil {
		t.Fatal(err)
	}
	return &mountStats{path: filepath.Join(dir, "mountstats"), template: string(b),
		ops: map[[2]string]*opCounters{}, connects: map[string]int{}, read: map[string]int{}, written: map[string]int{}}
}

// add completes one round of l.
func (m *mountStats) add(l rpcLoad) {
	c := m.ops[[2]string{l.mount, l.op}]
	if c == nil {
		c = &opCounters{}
		m.ops[[2]string{l.mount, l.op}] = c
	}
	c.ops += l.n
	c.trans += l.n + l.retrans
	c.timeouts += l.timeouts
	c.errors += l.failures()
	c.rttMs += int64(l.n) * l.rtt.Milliseconds()
	c.execMs += int64(l.n) * l.exec.Milliseconds()
	m.read[l.mount] += l.n * l.read
	m.written[l.mount] += l.n * l.written
}

// write writes the file, replacing it at once: the agent reads it at every collection.
// Every mount, operation and transport line the test moves must be in the template.
func (m *mountStats) write(t *testing.T) {
	t.Helper()
	lines := strings.SplitAfter(m.template, "\n")
	var mount string
	seen := map[string]bool{}
	for i, line := range lines {
		body := strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(body, "device "); ok {
			_, after, _ := strings.Cut(rest, " mounted on ")
			mount, _, _ = strings.Cut(after, " with fstype ")
			continue
		}
		key, vals, ok := strings.Cut(body, ":")
		if !ok {
			continue
		}
		var deltas map[int]int64
		switch key {
		case "xprt":
			deltas = map[int]int64{3: int64(m.connects[mount])} // tcp port binds connects
		case "bytes":
			deltas = map[int]int64{4: int64(m.read[mount]), 5: int64(m.written[mount])}
		default:
			c := m.ops[[2]string{mount, key}]
			if c == nil {
				continue
			}
			// ops transmissions timeouts sent received queue rtt execute errors
			deltas = map[int]int64{0: int64(c.ops), 1: int64(c.trans), 2: int64(c.timeouts), 6: c.rttMs, 7: c.execMs, 8: int64(c.errors)}
		}
		seen[mount+" "+key] = true
		fs := strings.Fields(vals)
		for col, d := range deltas {
			if col >= len(fs) {
				t.Fatalf("mountstats.after: %s %s: no column %d in %q", mount, key, col, body)
			}
			v, err := strconv.ParseInt(fs[col], 10, 64)
			if err != nil {
				t.Fatalf("mountstats.after: %s %s column %d: %v", mount, key, col, err)
			}
			fs[col] = strconv.FormatInt(v+d, 10)
		}
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		sep := vals[:len(vals)-len(strings.TrimLeft(vals, " \t"))]
		lines[i] = fmt.Sprintf("%s%s:%s%s\n", indent, key, sep, strings.Join(fs, " "))
	}
	for k := range m.ops {
		if !seen[k[0]+" "+k[1]] {
			t.Fatalf("mountstats.after has no operation %s on %s", k[1], k[0])
		}
	}
	for _, mp := range []string{nfs4Mount, nfs3Mount} {
		if !seen[mp+" xprt"] || !seen[mp+" bytes"] {
			t.Fatalf("mountstats.after has no xprt: or bytes: line for %s", mp)
		}
	}
	tmp := m.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, m.path); err != nil {
		t.Fatal(err)
	}
}
