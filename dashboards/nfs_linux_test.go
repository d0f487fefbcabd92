package dashboards

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linuxdiag/aod/internal/fixtures"
)

// The NFS mounts of testdata/kernel-6.12/nfs/mountstats.after, a real
// /proc/self/mountstats of kernel 6.12 after a workload on two mounts of the kernel
// NFS server on 127.0.0.1.
const (
	nfs4Mount = "/mnt/n4" // 127.0.0.1:/, NFSv4.2
	nfs3Mount = "/mnt/n3" // 127.0.0.1:/srv/nfs, NFSv3
)

// rpcLoad is one kind of NFS RPC a host completes on a mount in every round.
type rpcLoad struct {
	mount, op string
	n         int           // RPCs per round
	rtt, exec time.Duration // of each RPC
	retrans   int           // retransmissions per round
	timeouts  int           // major timeouts per round
	read      int           // bytes read from the server per RPC
	written   int           // bytes written to the server per RPC
}

// healthyRPCs is ordinary NFS traffic on both mounts: reads, writes and attribute
// checks answered in milliseconds.
var healthyRPCs = []rpcLoad{
	{mount: nfs4Mount, op: "READ", n: 4, rtt: 2 * ms, exec: 3 * ms, read: ioSize},
	{mount: nfs4Mount, op: "WRITE", n: 3, rtt: 4 * ms, exec: 5 * ms, written: ioSize},
	{mount: nfs4Mount, op: "GETATTR", n: 6, rtt: time.Millisecond, exec: time.Millisecond},
	{mount: nfs3Mount, op: "READ", n: 4, rtt: 2 * ms, exec: 3 * ms, read: ioSize},
	{mount: nfs3Mount, op: "WRITE", n: 2, rtt: 4 * ms, exec: 6 * ms, written: ioSize},
	{mount: nfs3Mount, op: "GETATTR", n: 5, rtt: time.Millisecond, exec: 2 * ms},
}

// notResponding is what a sick NFS server adds on the v3 mount: reads that wait out
// a major timeout ("server not responding") and are sent again, slowly answered.
var notResponding = rpcLoad{mount: nfs3Mount, op: "READ", n: 2, rtt: 900 * ms, exec: 61 * time.Second,
	retrans: 3, timeouts: 1, read: ioSize}

// opCounters are one operation's mountstats counters the test moves.
type opCounters struct {
	ops, trans, timeouts int
	rttMs, execMs        int64
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
			deltas = map[int]int64{0: int64(c.ops), 1: int64(c.trans), 2: int64(c.timeouts), 6: c.rttMs, 7: c.execMs}
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
