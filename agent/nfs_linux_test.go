package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/bpf/bpftest"
	"github.com/linuxdiag/aod/internal/archive/archivetest"
	"github.com/linuxdiag/aod/internal/bundler"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/fixtures"
	"github.com/linuxdiag/aod/internal/nfs"
	"github.com/linuxdiag/aod/internal/telemetry/telemetrytest"
)

// nfsAgentConfig watches NFS only: READs over 50 ms (three fire) and RMDIRs of
// non-empty directories (two fire), as AODv2's nfsslower and nfsiosnoop sections say.
const nfsAgentConfig = `watch_interval_sec: 10
aod_output_dir: %s
anomalies:
  nfs:
    latency:
      tool: nfsslower
      mode: trackonly
      acceptable_count: 3
      track_commands:
        - command: NFSPROC4_CLNT_READ
          threshold: %d
      actions:
        mounts:
    error:
      tool: nfsiosnoop
      acceptable_count: 2
      track_errors:
        - NFS4ERR_NOTEMPTY
      actions:
        mounts:
telemetry:
  otlp:
    endpoint: %s
    export_interval_sec: 1
    tls: {insecure: true}
  prometheus:
    listen: %s
detection:
  cooldown_sec: 60
`

// exporterLabels are the labels the Prometheus endpoint puts on every series.
var exporterLabels = regexp.MustCompile(`instance="[^"]*",job="[^"]*",`)

// startNFS runs an agent on NFS programs driven with BPF_PROG_TEST_RUN, configured by
// nfsAgentConfig with READ's threshold at thresholdMs.
func startNFS(t *testing.T, thresholdMs int) (*fixture, *bpftest.NFSHarness) {
	h := bpftest.NewNFS(t, "6.12", bpf.Options{}, bpf.NFSOptions{})
	f := startOn(t, h.Harness, h.NFS(), time.Second, func(f *fixture) *config.Config {
		return nfsConfig(t, f, thresholdMs)
	})
	return f, h
}

func nfsConfig(t *testing.T, f *fixture, thresholdMs int) *config.Config {
	t.Helper()
	cfg, _, err := config.Parse("nfs-agent-test.yaml", fmt.Appendf(nil, nfsAgentConfig, f.dir, thresholdMs, f.otlp.GRPC, f.prom))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestAgentWatchesNFS drives the NFS programs with slow v4 READs, a fast one, a slow
// GETATTR (not tracked) and failed v3 RMDIRs, and checks that the configuration's
// thresholds and tracked errors reached the NFS maps, that both NFS detectors fired
// and wrote their bundles, and that the NFS histograms and error counts are exported.
func TestAgentWatchesNFS(t *testing.T) {
	f, h := startNFS(t, 50)
	for i := range 3 {
		h.Stats(bpftest.RPC{Client: 4, Version: 4, Proc: uint32(nfs.V4Read), Xid: 0x100 + uint32(i), Latency: 80 * time.Millisecond, Transmissions: 1})
	}
	h.Stats(bpftest.RPC{Client: 4, Version: 4, Proc: uint32(nfs.V4Read), Xid: 0x200, Latency: time.Millisecond, Transmissions: 1})
	h.Stats(bpftest.RPC{Client: 4, Version: 4, Proc: uint32(nfs.V4GetAttr), Xid: 0x201, Latency: 900 * time.Millisecond, Transmissions: 1})
	for i := range 2 {
		rmdir := bpftest.RPC{Client: 6, Version: 3, Proc: 13, Xid: 0x300 + uint32(i), Status: -39, Latency: 2 * time.Millisecond, Transmissions: 1}
		h.XdrStatus(rmdir, 66, 0) // NFS3ERR_NOTEMPTY
		h.Stats(rmdir)
	}

	for _, typ := range []string{"latency", "error"} {
		telemetrytest.WaitFor(t, 20*time.Second, "an NFS "+typ+" bundle", func() bool {
			m, _ := filepath.Glob(filepath.Join(f.dir, "batches", "aod_quick_*_nfs_"+typ+".tar.zst"))
			return len(m) == 1
		})
	}
	if !hasSpan(f.otlp, "nfs.anomaly") {
		t.Error("no nfs.anomaly span at the OTLP receiver")
	}
	// Only the three slow READs and the two RMDIRs went up as events: the fast READ
	// and the untracked GETATTR were filtered in the kernel.
	if c := h.Counters(); c.EventsEmitted != 5 {
		t.Errorf("events emitted %d, want 5 (the kernel thresholds are not the configuration's)", c.EventsEmitted)
	}
	wants := []string{
		`nfs_client_operation_duration_seconds_count{nfs_command="NFSPROC4_CLNT_READ",nfs_share="",onc_rpc_procedure_name="READ",onc_rpc_program_name="nfs",onc_rpc_version="4",rpc_system="onc_rpc",server_address=""} 4`,
		`nfs_client_operation_duration_seconds_count{nfs_command="NFSPROC4_CLNT_GETATTR",nfs_share="",onc_rpc_procedure_name="GETATTR",onc_rpc_program_name="nfs",onc_rpc_version="4",rpc_system="onc_rpc",server_address=""} 1`,
		`nfs_client_errors_total{error_type="NFS4ERR_NOTEMPTY",nfs_command="NFS3PROC_RMDIR",nfs_share="",onc_rpc_procedure_name="RMDIR",onc_rpc_program_name="nfs",onc_rpc_version="3",rpc_system="onc_rpc",server_address=""} 2`,
	}
	var body string
	telemetrytest.WaitFor(t, 20*time.Second, "the NFS series on the Prometheus endpoint", func() bool {
		// The exporter's own labels are not the point here.
		body = exporterLabels.ReplaceAllString(scrape(t, f.prom), "")
		for _, w := range wants {
			if !strings.Contains(body, w) {
				return false
			}
		}
		return true
	})
}

// TestReloadChangesNFSKernelFiltering: a reload that raises READ's threshold reaches
// the NFS threshold map, with the programs still loaded.
func TestReloadChangesNFSKernelFiltering(t *testing.T) {
	f, h := startNFS(t, 50)
	read := bpftest.RPC{Client: 4, Version: 4, Proc: uint32(nfs.V4Read), Xid: 0x100, Latency: 80 * time.Millisecond, Transmissions: 1}
	h.Stats(read)
	mid := h.Counters()
	if mid.EventsEmitted != 1 {
		t.Fatalf("at 50 ms: %d events, want the slow READ", mid.EventsEmitted)
	}
	if err := f.agent.Reload(context.Background(), nfsConfig(t, f, 500)); err != nil {
		t.Fatal(err)
	}
	read.Xid++
	h.Stats(read)
	if after := h.Counters(); after.EventsEmitted != mid.EventsEmitted || after.EventsFiltered != mid.EventsFiltered+1 {
		t.Fatalf("at 500 ms: emitted %d -> %d, filtered %d -> %d; want the READ filtered",
			mid.EventsEmitted, after.EventsEmitted, mid.EventsFiltered, after.EventsFiltered)
	}
}

// mountstatsOf is a /proc/self/mountstats with an NFSv4.2 mount of 10.0.0.1:/export
// that completed reads READs and an NFSv3 mount of 10.0.0.2:/srv that completed
// rmdirs RMDIRs. The NFSv4 mount lists every procedure in 6.12's order, as the kernel
// does (the agent tells the probes that order); the NFSv3 one those up to RMDIR.
func mountstatsOf(reads, rmdirs int) string {
	v4 := ""
	for code, name := range nfs.Table.AllCommands() {
		if code >= nfs.V3Base {
			break
		}
		n := 0
		if code == nfs.V4Read {
			n = reads
		}
		v4 += fmt.Sprintf("\t%12s: %d %d 0 0 0 0 0 0 0\n", strings.TrimPrefix(name, nfs.Table.CommandPrefix), n, n)
	}
	v3 := ""
	for i, name := range []string{"NULL", "GETATTR", "SETATTR", "LOOKUP", "ACCESS", "READLINK", "READ", "WRITE",
		"CREATE", "MKDIR", "SYMLINK", "MKNOD", "REMOVE", "RMDIR"} {
		n := 0
		if i == 13 {
			n = rmdirs
		}
		v3 += fmt.Sprintf("\t%12s: %d %d 0 0 0 0 0 0 0\n", name, n, n)
	}
	return fmt.Sprintf(`device proc mounted on /proc with fstype proc
device 10.0.0.1:/export mounted on /mnt/n4 with fstype nfs4 statvers=1.1
	RPC iostats version: 1.1  p/v: 100003/4 (nfs)
	per-op statistics
%s

device 10.0.0.2:/srv mounted on /mnt/n3 with fstype nfs statvers=1.1
	RPC iostats version: 1.1  p/v: 100003/3 (nfs)
	per-op statistics
%s
`, v4, v3)
}

// TestNFSSeriesNameTheirMount: the RPC clients' series are named by the mount whose
// mountstats counters grew as the client's RPCs did. Metrics are collected at start
// and at shutdown only, so the two reads of mountstats are the ones the test writes.
func TestNFSSeriesNameTheirMount(t *testing.T) {
	ms := filepath.Join(t.TempDir(), "mountstats")
	if err := os.WriteFile(ms, []byte(mountstatsOf(0, 0)), 0o644); err != nil {
		t.Fatal(err)
	}
	f, h := startNFSReading(t, ms, time.Hour)

	for i := range 3 {
		h.Stats(bpftest.RPC{Client: 7, Version: 4, Proc: uint32(nfs.V4Read), Xid: 0x100 + uint32(i), Latency: time.Millisecond, Transmissions: 1})
	}
	rmdir := bpftest.RPC{Client: 8, Version: 3, Proc: 13, Xid: 0x300, Status: -39, Latency: time.Millisecond, Transmissions: 1}
	h.XdrStatus(rmdir, 66, 0)
	h.Stats(rmdir)
	// The lease client's SEQUENCE, which no mount lists, stays unnamed.
	h.Stats(bpftest.RPC{Client: 2, Version: 4, Proc: uint32(nfs.V4Sequence), Xid: 0x400, Latency: time.Millisecond, Transmissions: 1})
	if err := os.WriteFile(ms, []byte(mountstatsOf(3, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	f.stop(t)

	got := nfsSeries(f)
	want := map[string]string{
		"NFSPROC4_CLNT_READ":     "10.0.0.1:/export",
		"NFS3PROC_RMDIR":         "10.0.0.2:/srv",
		"NFSPROC4_CLNT_SEQUENCE": ":",
	}
	if !maps.Equal(got, want) {
		t.Errorf("series named %v, want %v", got, want)
	}
}

// TestNFSAnomalyNamesTheMount: once a collection has bound the RPC client to its
// mount, the error anomaly's bundle names the mount as server:/export.
func TestNFSAnomalyNamesTheMount(t *testing.T) {
	ms := filepath.Join(t.TempDir(), "mountstats")
	if err := os.WriteFile(ms, []byte(mountstatsOf(0, 0)), 0o644); err != nil {
		t.Fatal(err)
	}
	f, h := startNFSReading(t, ms, time.Second)

	rmdir := func(xid uint32) {
		r := bpftest.RPC{Client: 8, Version: 3, Proc: 13, Xid: xid, Status: -39, Latency: time.Millisecond, Transmissions: 1}
		h.XdrStatus(r, 66, 0)
		h.Stats(r)
	}
	rmdir(0x300)
	if err := os.WriteFile(ms, []byte(mountstatsOf(0, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	telemetrytest.WaitFor(t, 20*time.Second, "the RMDIR series named by its mount", func() bool {
		return strings.Contains(scrape(t, f.prom), `nfs_share="/srv"`)
	})
	rmdir(0x301)
	var files []string
	telemetrytest.WaitFor(t, 20*time.Second, "the NFS error bundle", func() bool {
		files, _ = filepath.Glob(filepath.Join(f.dir, "batches", "aod_quick_*_nfs_error.tar.zst"))
		return len(files) == 1
	})
	_, members, err := archivetest.Members(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var m bundler.Manifest
	if err := json.Unmarshal(members[bundler.ManifestName], &m); err != nil {
		t.Fatal(err)
	}
	if s := m.Anomaly.TopShares; len(s) != 1 || s[0].Value != "10.0.0.2:/srv" || s[0].Count != 2 {
		t.Errorf("top shares %+v, want the two RMDIRs on 10.0.0.2:/srv", s)
	}
}

// nfsSeries returns the NFS duration series at the OTLP receiver, as command ->
// "server:share".
func nfsSeries(f *fixture) map[string]string {
	got := map[string]string{}
	for _, md := range f.otlp.Metrics.AllMetrics() {
		rms := md.ResourceMetrics()
		for i := range rms.Len() {
			sms := rms.At(i).ScopeMetrics()
			for j := range sms.Len() {
				mets := sms.At(j).Metrics()
				for k := range mets.Len() {
					if m := mets.At(k); m.Name() == nfs.Table.Keys.Duration {
						dps := m.ExponentialHistogram().DataPoints()
						for l := range dps.Len() {
							at := dps.At(l).Attributes().AsRaw()
							got[fmt.Sprint(at["nfs.command"])] = fmt.Sprintf("%v:%v", at["server.address"], at["nfs.share"])
						}
					}
				}
			}
		}
	}
	return got
}

// startNFSReading runs an agent configured by nfsAgentConfig on NFS programs, reading
// the mounts from mountstats and collecting (and exporting over OTLP) every interval.
func startNFSReading(t *testing.T, mountstats string, every time.Duration) (*fixture, *bpftest.NFSHarness) {
	h := bpftest.NewNFS(t, "6.12", bpf.Options{}, bpf.NFSOptions{})
	f := &fixture{every: every, h: h.Harness, otlp: telemetrytest.StartOTLP(t), prom: telemetrytest.FreeAddr(t), dir: t.TempDir()}
	cfg := nfsConfig(t, f, 50)
	cfg.Telemetry.OTLP.ExportInterval = every
	a, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Kernel: h.Probes(), NFS: h.NFS(), MountStats: mountstats})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.agent = a
	t.Cleanup(func() { f.stop(t) })
	return f, h
}

// TestNFSv4OrderFromMountstats: on Linux 7.3, whose NFSv4 procedure list has
// ZERO_RANGE at index 57, the agent tells the probes the order mountstats lists, so the
// RPC at that index is named ZERO_RANGE, not 6.12's procedure 57.
func TestNFSv4OrderFromMountstats(t *testing.T) {
	f, h := startNFSReading(t, fixtures.Path("kernel-7.3/nfs/mountstats.after"), time.Hour)
	h.Stats(bpftest.RPC{Client: 3, Version: 4, Proc: 57, Xid: 0x500, Latency: time.Millisecond, Transmissions: 1})
	f.stop(t)
	got := nfsSeries(f)
	if _, ok := got["NFSPROC4_CLNT_ZERO_RANGE"]; !ok || len(got) != 1 {
		t.Errorf("series %v, want one of NFSPROC4_CLNT_ZERO_RANGE", got)
	}
}
