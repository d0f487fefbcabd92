package dashboards

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/agent"
	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/bpf/bpftest"
	"github.com/linuxdiag/aod/configs"
	"github.com/linuxdiag/aod/internal/archive"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/fixtures"
	"github.com/linuxdiag/aod/internal/promtest"
	"github.com/linuxdiag/aod/internal/retention"
	"github.com/linuxdiag/aod/internal/smb"
	"github.com/linuxdiag/aod/internal/telemetry/telemetrytest"
)

// The session and trees of testdata/kernel-6.12/DebugData, a real
// /proc/fs/cifs/DebugData of kernel 6.12 mounting \\127.0.0.1\share.
const (
	testSession = 0x936c11ff
	shareTree   = 0x53dfe4a  // \\127.0.0.1\share
	ipcTree     = 0x5022a236 // \\127.0.0.1\IPC$
	noTree      = 0          // NEGOTIATE, SESSION_SETUP, ECHO: no share
	connID      = 1          // the session's connection (DebugData's ConnectionId)
)

// ioSize is what one READ or WRITE moves, for the Stats byte counters.
const ioSize = 64 << 10

// load is one kind of SMB request a host completes in every round of traffic.
type load struct {
	cmd       uint16
	tree      uint32
	n         int             // requests per round
	latencies []time.Duration // cycled through
	status    string          // NTSTATUS name of every failEvery-th request
	rc        unix.Errno      // the errno the client maps status to
	failEvery int
}

const us, ms = time.Microsecond, time.Millisecond

// healthyLoad is ordinary traffic: fast requests, and only the failures every
// workload produces (end of file, end of listing, names that do not exist).
var healthyLoad = []load{
	{cmd: smb.Read, tree: shareTree, n: 8, latencies: []time.Duration{300 * us, 800 * us, 2 * ms, 5 * ms, 12 * ms},
		status: "STATUS_END_OF_FILE", rc: unix.ENODATA, failEvery: 8},
	{cmd: smb.Write, tree: shareTree, n: 6, latencies: []time.Duration{500 * us, time.Millisecond, 3 * ms, 8 * ms}},
	{cmd: smb.Create, tree: shareTree, n: 5, latencies: []time.Duration{400 * us, 900 * us, 2 * ms},
		status: "STATUS_OBJECT_NAME_NOT_FOUND", rc: unix.ENOENT, failEvery: 5},
	{cmd: smb.Close, tree: shareTree, n: 4, latencies: []time.Duration{200 * us, 500 * us}},
	{cmd: smb.QueryInfo, tree: shareTree, n: 4, latencies: []time.Duration{300 * us, 700 * us}},
	{cmd: smb.QueryDirectory, tree: shareTree, n: 2, latencies: []time.Duration{time.Millisecond, 3 * ms},
		status: "STATUS_NO_MORE_FILES", rc: unix.ENODATA, failEvery: 2},
	{cmd: smb.Ioctl, tree: ipcTree, n: 1, latencies: []time.Duration{600 * us}},
	{cmd: smb.Echo, tree: noTree, n: 1, latencies: []time.Duration{150 * us}},
}

// slowReads is what a sick server adds to the traffic: reads slower than the
// latency ceiling of the default configuration (1 s) and its threshold (100 ms).
var slowReads = load{cmd: smb.Read, tree: shareTree, n: 3, latencies: []time.Duration{700 * ms, 1200 * ms}}

// When the sick server drops the share, every request in flight fails at once: a
// burst of this many failures per reconnect, more than the troubled host's one-page
// ring holds, so that the kernel loses events (ring_full) while the agent catches up.
const (
	failureBurst = 200
	hungRequests = 5 // requests the sick server never answers
)

// startEntries sizes the hosts' in-flight tables: bpftest.Request scans the table, and
// a small one keeps a round of traffic to a few milliseconds.
const startEntries = 1024

// host is one aod agent the test runs: the real agent (agent) with the
// detectors and kernel filters of the default configuration, on BPF
// probes of its own (SMB and NFS) that the test drives through bpftest exactly as the
// cifs, sunrpc and nfs tracepoints would, reading its own /proc/fs/cifs (kernel 6.12's
// DebugData, and a Stats file the test advances as the kernel does) and
// /proc/self/mountstats, and serving /metrics on its own loopback port.
type host struct {
	t       *testing.T
	name    string // the instance label Prometheus gives its target
	addr    string // host:port of /metrics
	h       *bpftest.Harness
	nfsh    *bpftest.NFSHarness // the NFS programs, on h's ring and counters
	agent   *agent.Agent
	outDir  string // aod_output_dir
	procDir string // its /proc/fs/cifs
	stats   cifsStats
	loads   []load
	nfs     *mountStats // its /proc/self/mountstats
	rpcs    []rpcLoad
	xid     uint32         // of the last RPC
	fed     map[rpcKey]int // RPCs the NFS probes measured, by kind

	round    int
	troubled bool
	nextMid  uint64          // mids of the requests the test enters itself
	stuck    *archive.Writer // a bundle writer that never finishes
}

// hostConfig adjusts the default configuration for one host.
type hostConfig func(t *testing.T, cfg *config.Config)

// startHost starts an agent on fresh probes (sized by opts) that runs the default
// configuration, adjusted by adjust.
func startHost(t *testing.T, name string, opts bpf.Options, adjust hostConfig) *host {
	t.Helper()
	nfsh := bpftest.NewNFS(t, "6.12", opts, bpf.NFSOptions{})
	h := &host{
		t: t, name: name, addr: telemetrytest.FreeAddr(t), h: nfsh.Harness, nfsh: nfsh,
		outDir: t.TempDir(), procDir: t.TempDir(), loads: healthyLoad,
		nfs: newMountStats(t, t.TempDir()), rpcs: healthyRPCs, fed: map[rpcKey]int{},
		nextMid: 1 << 40,
	}
	h.stats.template = readTestdata(t, "Stats")
	if err := os.WriteFile(filepath.Join(h.procDir, "DebugData"), readTestdata(t, "DebugData"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.writeStats()
	h.nfs.write(t)

	cfg, _, err := config.Parse(configs.DefaultName, configs.Default)
	if err != nil {
		t.Fatal(err)
	}
	cfg.OutputDir = h.outDir
	cfg.Telemetry.Prometheus.Listen = h.addr
	// The receiver collects every second; Prometheus scrapes every second.
	cfg.Telemetry.OTLP.ExportInterval = scrapeInterval
	cfg.Cleanup.Interval = time.Second
	adjust(t, cfg)

	// Errors only, shown when the test fails (or with -v): the warnings (anomalies) are
	// the test's doing.
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	h.agent, err = agent.New(cfg, agent.Options{Logger: log, Kernel: h.h.Probes(), NFS: nfsh.NFS(),
		ProcDir: h.procDir, MountStats: h.nfs.path})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.agent.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := h.agent.Shutdown(ctx); err != nil {
			t.Errorf("%s: shutdown: %v", h.name, err)
		}
		if h.stuck != nil {
			h.stuck.Abort()
		}
	})
	return h
}

// startHealthy starts the host whose server stays healthy. It was restarted with
// bundles from before still in its output directory, which fill the size limit to
// halfway between retention's watermarks: retention leaves them alone, and no alert
// may take that for trouble.
func startHealthy(t *testing.T) *host {
	return startHost(t, "healthy", bpf.Options{StartEntries: startEntries}, func(t *testing.T, cfg *config.Config) {
		var total int64
		for i := range 2 {
			total += writeBundle(t, cfg.OutputDir, time.Now().Add(-time.Duration(2-i)*time.Hour), 192<<10)
		}
		cfg.Cleanup.MaxTotalSize = int64(float64(total) / ((retention.Low + retention.High) / 2))
	})
}

// startTroubled starts the host whose server turns sick. Its probes have a ring of one
// page, so that a burst of failures outruns the agent's reader; the file system of its
// output directory is below the free-space floor (bundle.min_free_mb), so every
// bundle is skipped; and its bundles may use 1 MiB.
func startTroubled(t *testing.T) *host {
	return startHost(t, "troubled", bpf.Options{StartEntries: startEntries, RingBytes: uint32(os.Getpagesize())},
		func(t *testing.T, cfg *config.Config) {
			var st unix.Statfs_t
			if err := unix.Statfs(cfg.OutputDir, &st); err != nil {
				t.Fatal(err)
			}
			cfg.Bundle.MinFree = int64(st.Bavail)*st.Bsize + 1<<30
			cfg.Cleanup.MaxTotalSize = 1 << 20
		})
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixtures.Path("kernel-6.12", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeBundle writes a finished bundle made at when, with size bytes of
// incompressible content, into outputDir, and returns its size on disk.
func writeBundle(t *testing.T, outputDir string, when time.Time, size int) int64 {
	t.Helper()
	d, err := archive.OpenDir(outputDir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	w, err := d.Create(archive.BundleName(when, "smb", "latency"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddBytes("payload", randomBytes(size)); err != nil {
		t.Fatal(err)
	}
	_, n, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return b
}

// status returns the value of an NTSTATUS name.
func (h *host) status(name string) uint32 {
	h.t.Helper()
	s, ok := smb.LookupStatus(name)
	if !ok {
		h.t.Fatalf("unknown NTSTATUS %s", name)
	}
	return s
}

// step completes one round of the host's traffic through its probes, and moves its
// /proc/fs/cifs/Stats as the kernel would.
func (h *host) step() {
	h.t.Helper()
	h.round++
	for _, l := range h.loads {
		for i := range l.n {
			r := bpftest.Request{Session: testSession, Tree: l.tree, Command: l.cmd,
				Latency: l.latencies[(h.round+i)%len(l.latencies)]}
			if l.failEvery > 0 && i%l.failEvery == 0 {
				r.Status, r.Rc = h.status(l.status), -int32(l.rc)
			}
			h.h.Request(r)
		}
		if l.tree == shareTree {
			h.stats.smbs += l.n
			switch l.cmd {
			case smb.Read:
				h.stats.bytesRead += l.n * ioSize
			case smb.Write:
				h.stats.bytesWritten += l.n * ioSize
			}
		}
	}
	if h.troubled {
		h.dropShare()
		// The NFS client gives up on the connection and sets up a new one.
		h.nfs.connects[nfs3Mount]++
	}
	h.writeStats()
	// The RPCs go through the probes just before mountstats counts them: the agent
	// names each RPC client by the mount whose counters grew as the client's did, and
	// a collection between the two delays that by a collection (settleNFS).
	for _, l := range h.rpcs {
		h.runRPCs(l)
		h.nfs.add(l)
	}
	h.runRPCs(leaseRenewal)
	h.nfs.write(h.t)
}

// startTrouble makes the host's servers sick from its next round on: reads slow down,
// NFS reads time out and file handles go stale, a few requests are never answered,
// the share is disconnected, and a bundle writer hangs in the output directory with
// more than the size limit written.
func (h *host) startTrouble() {
	h.t.Helper()
	h.troubled = true
	h.loads = append(h.loads[:len(h.loads):len(h.loads)], slowReads)
	h.rpcs = append(h.rpcs[:len(h.rpcs):len(h.rpcs)], notResponding, staleHandles)
	for range hungRequests {
		h.h.Enter(testSession, shareTree, smb.Read, h.mid())
	}
	h.stats.mids = hungRequests
	h.stats.disconnected = true

	d, err := archive.OpenDir(h.outDir)
	if err != nil {
		h.t.Fatal(err)
	}
	defer d.Close()
	if h.stuck, err = d.Create(archive.BundleName(time.Now(), "smb", "latency"), 1); err != nil {
		h.t.Fatal(err)
	}
	// Written through the encoder (minus what it buffers): well over the 1 MiB limit.
	if err := h.stuck.AddBytes("capture.pcap", randomBytes(3<<19)); err != nil {
		h.t.Fatal(err)
	}
}

// dropShare is what the sick server does once a round: the session reconnects, and
// every request in flight on the share fails with STATUS_NETWORK_NAME_DELETED at once.
func (h *host) dropShare() {
	h.h.Reconnect(connID, h.nextMid, 0)
	h.stats.sessionReconnects++
	h.stats.shareReconnects++
	cmds := [...]uint16{smb.Read, smb.Write, smb.Create}
	first := h.nextMid
	for i := range failureBurst {
		h.h.Enter(testSession, shareTree, cmds[i%len(cmds)], h.mid())
	}
	deleted := h.status("STATUS_NETWORK_NAME_DELETED")
	for i := range failureBurst {
		h.h.Fail(testSession, shareTree, cmds[i%len(cmds)], first+uint64(i), deleted, -int32(unix.EREMCHG))
	}
}

func (h *host) mid() uint64 {
	h.nextMid++
	return h.nextMid - 1
}

// target is the host as Prometheus scrapes it. The agents of one test process share
// one host name, which they serve as instance: Prometheus names them by target.
func (h *host) target() promtest.Target {
	return promtest.Target{Address: h.addr, Labels: map[string]string{"instance": h.name}}
}

// cifsStats are the /proc/fs/cifs/Stats counters the hosts' traffic moves, on top of
// testdata/kernel-6.12/Stats.
type cifsStats struct {
	template                            []byte
	sessionReconnects, shareReconnects  int
	smbs, bytesRead, bytesWritten, mids int
	disconnected                        bool
}

// writeStats writes the host's Stats file, replacing it at once: the agent reads it
// at every collection.
func (h *host) writeStats() {
	h.t.Helper()
	s := &h.stats
	text := string(s.template)
	replace := func(old, new string) {
		if !strings.Contains(text, old) {
			h.t.Fatalf("kernel-6.12/Stats has no line %q", old)
		}
		text = strings.Replace(text, old, new, 1)
	}
	replace("Operations (MIDs): 0\n", fmt.Sprintf("Operations (MIDs): %d\n", s.mids))
	replace("\n0 session 0 share reconnects\n", fmt.Sprintf("\n%d session %d share reconnects\n", s.sessionReconnects, s.shareReconnects))
	replace("SMBs: 310 since", fmt.Sprintf("SMBs: %d since", 310+s.smbs))
	replace("Bytes read: 4194328  Bytes written: 4194311\n",
		fmt.Sprintf("Bytes read: %d  Bytes written: %d\n", 4194328+s.bytesRead, 4194311+s.bytesWritten))
	if s.disconnected {
		replace("1) \\\\127.0.0.1\\share\n", "1) \\\\127.0.0.1\\share\tDISCONNECTED \n")
	}
	tmp := filepath.Join(h.procDir, ".Stats")
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(h.procDir, "Stats")); err != nil {
		h.t.Fatal(err)
	}
}

// timeBPFPrograms turns on the kernel's BPF run-time statistics (sysctl
// kernel.bpf_stats_enabled), as an administrator does to fill the BPF panels, and
// turns them off again when the test ends if they were off.
func timeBPFPrograms(t *testing.T) {
	t.Helper()
	const sysctl = "/proc/sys/kernel/bpf_stats_enabled"
	old, err := os.ReadFile(sysctl)
	if err != nil {
		t.Skipf("no %s (%v): the BPF run-time panels would have no data", sysctl, err)
	}
	if strings.TrimSpace(string(old)) == "1" {
		return
	}
	if err := os.WriteFile(sysctl, []byte("1\n"), 0o644); err != nil {
		t.Skipf("cannot turn on kernel.bpf_stats_enabled (%v): the BPF run-time panels would have no data", err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(sysctl, old, 0o644); err != nil {
			t.Errorf("restore kernel.bpf_stats_enabled: %v", err)
		}
	})
}
