package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/linuxdiag/aod/bpf/bpftest"
	"github.com/linuxdiag/aod/internal/actions"
	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/archive/archivetest"
	"github.com/linuxdiag/aod/internal/bundler"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/fixtures"
	"github.com/linuxdiag/aod/internal/ingest"
	"github.com/linuxdiag/aod/internal/smb"
	"github.com/linuxdiag/aod/internal/telemetry/telemetrytest"
)

// The session and tree of \\127.0.0.1\share in testdata/kernel-6.12/DebugData.
const (
	session = 0x936c11ff
	tree    = 0x53dfe4a
)

const agentConfig = `watch_interval_sec: 10
aod_output_dir: %s
anomalies:
  smb:
    latency:
      tool: smbslower
      mode: all
      acceptable_count: 3
      default_threshold_ms: %d
      actions:
        stats:
        mounts:
telemetry:
  otlp:
    endpoint: %s
    export_interval_sec: %d
    tls: {insecure: true}
  prometheus:
    listen: %s
detection:
  cooldown_sec: 60
`

type fixture struct {
	every   time.Duration // metrics collection interval
	h       *bpftest.Harness
	otlp    *telemetrytest.OTLPServer
	prom    string
	dir     string
	agent   *Agent
	stopped bool
}

func (f *fixture) config(t *testing.T, thresholdMs int) *config.Config {
	t.Helper()
	cfg, _, err := config.Parse("agent-test.yaml", fmt.Appendf(nil, agentConfig, f.dir, thresholdMs, f.otlp.GRPC, int(f.every.Seconds()), f.prom))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// start runs an agent on the harness's probes, exporting to a real OTLP receiver and
// serving Prometheus on a free loopback port, collecting metrics every interval. The
// agent's actions may be replaced.
func start(t *testing.T, every time.Duration, replace ...actions.Action) *fixture {
	return startWith(t, every, func(f *fixture) *config.Config { return f.config(t, 50) }, replace...)
}

// startWith is start with the configuration cfg makes for the fixture.
func startWith(t *testing.T, every time.Duration, cfg func(*fixture) *config.Config, replace ...actions.Action) *fixture {
	return startOn(t, bpftest.New(t), nil, every, cfg, replace...)
}

// startOn is startWith on the given probes: h's, and nfs loaded onto them if not nil.
func startOn(t *testing.T, h *bpftest.Harness, nfs ingest.NFSKernel, every time.Duration, cfg func(*fixture) *config.Config, replace ...actions.Action) *fixture {
	f := &fixture{every: every, h: h, otlp: telemetrytest.StartOTLP(t), prom: telemetrytest.FreeAddr(t), dir: t.TempDir()}
	table := actions.Table{}
	for _, a := range replace {
		table[a.Name] = a
	}
	a, err := New(cfg(f), Options{
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Kernel:        h.Probes(),
		NFS:           nfs,
		ProcDir:       fixtures.Path("kernel-6.12"),
		ControlSocket: filepath.Join(f.dir, "aod.sock"),
		Actions:       table,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.agent = a
	t.Cleanup(func() { f.stop(t) })
	return f
}

func (f *fixture) stop(t *testing.T) {
	if f.stopped {
		return
	}
	f.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.agent.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func (f *fixture) read(ms int) {
	f.h.Request(bpftest.Request{Session: session, Tree: tree, Command: smb.Read, Latency: time.Duration(ms) * time.Millisecond})
}

// TestAgentEndToEnd drives the real probes with slow READs and checks every output:
// an anomaly span and event records at the OTLP receiver, a bundle on disk, the
// duration histogram with its attributes at the OTLP receiver and on the Prometheus
// endpoint, and the agent's resource.
func TestAgentEndToEnd(t *testing.T) {
	f := start(t, time.Second)
	for range 3 {
		f.read(150)
	}
	f.read(1) // fast: measured, but no event

	telemetrytest.WaitFor(t, 20*time.Second, "the anomaly span", func() bool { return hasSpan(f.otlp, "smb.anomaly") })
	telemetrytest.WaitFor(t, 20*time.Second, "a bundle", func() bool {
		m, _ := filepath.Glob(filepath.Join(f.dir, "batches", "aod_quick_*_smb_latency.tar.zst"))
		return len(m) == 1
	})
	// The bundle's spans hang under the anomaly's; its actions are children too.
	telemetrytest.WaitFor(t, 20*time.Second, "the bundle's spans", func() bool {
		return hasSpan(f.otlp, "aod.bundle") && hasSpan(f.otlp, "aod.action stats")
	})
	telemetrytest.WaitFor(t, 20*time.Second, "4 READs at the OTLP receiver", func() bool {
		dp, ok := lastDuration(f.otlp.Metrics.AllMetrics())
		return ok && dp.Count() == 4
	})
	dp, _ := lastDuration(f.otlp.Metrics.AllMetrics())
	attrs := dp.Attributes().AsRaw()
	if attrs["smb.command"] != "SMB2_READ" || attrs["smb.share"] != "share" || attrs["server.address"] != "127.0.0.1" {
		t.Errorf("duration attributes = %v", attrs)
	}
	// Three slow READs, the anomaly and the bundle: one record each. The logs exporter
	// gathers records for up to a second before it sends them.
	telemetrytest.WaitFor(t, 20*time.Second, "5 log records", func() bool { return f.otlp.Logs.LogRecordCount() >= 5 })
	if n := f.otlp.Logs.LogRecordCount(); n != 5 {
		t.Errorf("OTLP got %d log records, want 5 (3 events, the anomaly, the bundle)", n)
	}
	res := f.otlp.Metrics.AllMetrics()[0].ResourceMetrics().At(0).Resource().Attributes().AsRaw()
	if res["service.name"] != "aod" || res["os.type"] != "linux" || res["host.name"] == nil || res["os.version"] == nil {
		t.Errorf("resource = %v", res)
	}
	wants := []string{
		`smb_client_operation_duration_seconds_bucket{`,
		`smb_command="SMB2_READ"`,
		`smb_share="share"`,
		`server_address="127.0.0.1"`,
		`aod_anomalies_total{`,
		`aod_bundles_total{`,
		`aod_bundle_disk_usage_bytes`,
	}
	// The bundle's disk use is measured by the retention sweep that follows it, and
	// served from the next collection: poll the endpoint until everything is there.
	var body string
	telemetrytest.WaitFor(t, 20*time.Second, "the Prometheus endpoint's series", func() bool {
		body = scrape(t, f.prom)
		for _, w := range wants {
			if !strings.Contains(body, w) {
				return false
			}
		}
		return true
	})
}

// TestShutdownFlushesFinalMetrics collects metrics only once an hour: whatever reaches
// the OTLP receiver was collected and flushed by Shutdown.
func TestShutdownFlushesFinalMetrics(t *testing.T) {
	f := start(t, time.Hour)
	f.read(150)
	f.read(2)
	f.stop(t)
	dp, ok := lastDuration(f.otlp.Metrics.AllMetrics())
	if !ok || dp.Count() != 2 {
		t.Fatalf("after shutdown: duration point found %v, count %d; want 2 READs", ok, dp.Count())
	}
	if n := f.otlp.Logs.LogRecordCount(); n != 1 {
		t.Errorf("OTLP got %d event records, want the slow READ", n)
	}
}

// shutdownBundle returns the members and manifest of the one shutdown bundle.
func (f *fixture) shutdownBundle(t *testing.T) (map[string][]byte, bundler.Manifest) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(f.dir, "batches", "aod_quick_*_aod_shutdown.tar.zst"))
	if len(files) != 1 {
		t.Fatalf("shutdown bundles: %v, want one", files)
	}
	_, members, err := archivetest.Members(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var m bundler.Manifest
	if err := json.Unmarshal(members[bundler.ManifestName], &m); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	return members, m
}

// TestShutdownWritesTheShutdownBundle: as AODv2 2026 does on SIGTERM, stopping the
// agent writes aod_quick_<ts>_aod_shutdown.tar.zst with every configured action (here
// stats, on a real kernel's Stats, and mounts) and the ones every protocol's bundle gets.
func TestShutdownWritesTheShutdownBundle(t *testing.T) {
	stats := fixtures.Path("kernel-6.12/Stats")
	f := start(t, time.Hour, actions.File(actions.NameStats, actions.MemberStats, stats, "no fixture"))
	f.stop(t)
	members, m := f.shutdownBundle(t)
	var names []string
	for _, r := range m.Actions {
		names = append(names, r.Name)
		for _, file := range r.Files {
			if _, ok := members[file]; !ok {
				t.Errorf("action %s wrote %s, not in the bundle", r.Name, file)
			}
		}
	}
	want := []string{actions.NameStats, actions.NameMounts}
	for _, p := range slices.Sorted(maps.Keys(actions.Always)) {
		for _, n := range actions.Always[p] {
			if !slices.Contains(want, n) {
				want = append(want, n)
			}
		}
	}
	if !slices.Equal(names, want) || m.Anomaly.Type != anomaly.TypeShutdown {
		t.Fatalf("actions %v, want %v; anomaly %+v", names, want, m.Anomaly)
	}
	wantStats, err := os.ReadFile(stats)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(members[actions.MemberStats], wantStats) || !bytes.Contains(members[actions.MemberMounts], []byte(" /proc proc ")) {
		t.Errorf("%s or %s does not hold its source; members %v", actions.MemberStats, actions.MemberMounts, slices.Sorted(maps.Keys(members)))
	}
	// The probes were still loaded: the in-flight requests were read.
	if _, ok := members["inflight.jsonl"]; !ok {
		t.Errorf("no inflight.jsonl; members %v", slices.Sorted(maps.Keys(members)))
	}
}

// TestShutdownCutsOffAHangingAction: an action stuck for good (it ignores its context,
// like a read stuck in the kernel) does not hold up the stop: the dump takes half of
// the stop timeout, records the action as cut off, and Shutdown completes in time.
func TestShutdownCutsOffAHangingAction(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	stuck := actions.Action{Name: actions.NameStats, Run: func(context.Context, *actions.Env, *actions.Output, *actions.Result) error {
		<-release
		return nil
	}}
	f := start(t, time.Hour, stuck)
	f.stopped = true
	stop := 2*actions.AbandonGrace + 4*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), stop)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.agent.Shutdown(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(stop + time.Minute):
		t.Fatal("Shutdown waited for the hanging action")
	}
	_, m := f.shutdownBundle(t)
	for _, r := range m.Actions {
		switch r.Name {
		case actions.NameStats:
			if r.Status != actions.StatusCanceled || !strings.Contains(r.Error, "share of the stop timeout") {
				t.Errorf("stats: %+v", r)
			}
		case actions.NameMounts:
			if r.Status != actions.StatusOK {
				t.Errorf("mounts: %+v", r)
			}
		}
	}
}

// TestShutdownDumpCanBeTurnedOff: bundle.shutdown_dump: false writes no bundle at stop.
func TestShutdownDumpCanBeTurnedOff(t *testing.T) {
	f := start(t, time.Hour)
	cfg := f.config(t, 50)
	cfg.Bundle.ShutdownDump = false
	if err := f.agent.Reload(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	f.stop(t)
	if files, _ := filepath.Glob(filepath.Join(f.dir, "batches", "*.tar.zst")); len(files) != 0 {
		t.Fatalf("bundles written: %v", files)
	}
}

func hasSpan(s *telemetrytest.OTLPServer, name string) bool {
	for _, td := range s.Traces.AllTraces() {
		rs := td.ResourceSpans()
		for i := range rs.Len() {
			ss := rs.At(i).ScopeSpans()
			for j := range ss.Len() {
				for k := range ss.At(j).Spans().Len() {
					if ss.At(j).Spans().At(k).Name() == name {
						return true
					}
				}
			}
		}
	}
	return false
}

// TestReloadChangesKernelFiltering raises the threshold with Reload: the same slow
// request that made an event before is filtered in the kernel after, with the
// programs still loaded.
func TestReloadChangesKernelFiltering(t *testing.T) {
	f := start(t, time.Hour)
	before := f.h.Counters()
	f.read(150)
	mid := f.h.Counters()
	if mid.EventsEmitted != before.EventsEmitted+1 {
		t.Fatalf("at 50 ms: events emitted %d -> %d, want one more", before.EventsEmitted, mid.EventsEmitted)
	}
	if err := f.agent.Reload(context.Background(), f.config(t, 500)); err != nil {
		t.Fatal(err)
	}
	f.read(150)
	after := f.h.Counters()
	if after.EventsEmitted != mid.EventsEmitted || after.EventsFiltered != mid.EventsFiltered+1 {
		t.Fatalf("at 500 ms: emitted %d -> %d, filtered %d -> %d; want the request filtered",
			mid.EventsEmitted, after.EventsEmitted, mid.EventsFiltered, after.EventsFiltered)
	}
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// lastDuration returns the newest SMB2_READ data point of the duration histogram.
func lastDuration(all []pmetric.Metrics) (pmetric.ExponentialHistogramDataPoint, bool) {
	var found pmetric.ExponentialHistogramDataPoint
	ok := false
	for _, md := range all {
		rms := md.ResourceMetrics()
		for i := range rms.Len() {
			sms := rms.At(i).ScopeMetrics()
			for j := range sms.Len() {
				ms := sms.At(j).Metrics()
				for k := range ms.Len() {
					m := ms.At(k)
					if m.Name() != "smb.client.operation.duration" || m.Type() != pmetric.MetricTypeExponentialHistogram {
						continue
					}
					dps := m.ExponentialHistogram().DataPoints()
					for l := range dps.Len() {
						if v, _ := dps.At(l).Attributes().Get("smb.command"); v.Str() == "SMB2_READ" {
							found, ok = dps.At(l), true
						}
					}
				}
			}
		}
	}
	return found, ok
}
