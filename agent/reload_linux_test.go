package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/linuxdiag/aod/internal/actions"
	"github.com/linuxdiag/aod/internal/archive"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/fixtures"
	"github.com/linuxdiag/aod/internal/pidlock"
	"github.com/linuxdiag/aod/internal/telemetry/telemetrytest"
)

// withTcpdump adds a tcpdump capture on loopback to the latency anomaly's actions.
const withTcpdump = "        mounts:\n        tcpdump: [\"-i\", \"lo\", \"-C\", \"1\", \"-W\", \"2\"]\n"

// configAt is the fixture's configuration with another output folder, threshold and
// actions.
func (f *fixture) configAt(t *testing.T, dir string, thresholdMs int, capture bool) *config.Config {
	t.Helper()
	text := fmt.Sprintf(agentConfig, dir, thresholdMs, f.otlp.GRPC, int(f.every.Seconds()), f.prom)
	if capture {
		text = strings.Replace(text, "        mounts:\n", withTcpdump, 1)
	}
	cfg, _, err := config.Parse("agent-test.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// tcpdumpPid waits for the running bundler's tcpdump and returns its pid.
func (f *fixture) tcpdumpPid(t *testing.T) int {
	t.Helper()
	var pid int
	telemetrytest.WaitFor(t, 20*time.Second, "tcpdump running", func() bool {
		f.agent.mu.Lock()
		st := f.agent.bundler.Captures()["smb/tcpdump"]
		f.agent.mu.Unlock()
		pid = st.Pid
		return st.Running && pid > 0
	})
	return pid
}

// series is one sample to look for: a metric, one label (or none) and the value.
type series struct {
	name, label, value string
	want               float64
}

func (w series) String() string { return fmt.Sprintf("%s{%s=%q} %v", w.name, w.label, w.value, w.want) }

// find finds w's sample in a text exposition.
func (w series) find(t *testing.T, body string) (float64, bool) {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("scrape does not parse: %v\n%s", err, body)
	}
	fam, ok := fams[w.name]
	if !ok {
		return 0, false
	}
	for _, m := range fam.GetMetric() {
		if w.label != "" && !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
			return l.GetName() == w.label && l.GetValue() == w.value
		}) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		}
	}
	return 0, false
}

// scrapeHas polls the Prometheus endpoint until one body holds every sample of want.
func (f *fixture) scrapeHas(t *testing.T, want ...series) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		body := scrape(t, f.prom)
		missing := -1
		for i, w := range want {
			if v, ok := w.find(t, body); !ok || v != w.want {
				missing = i
				break
			}
		}
		if missing < 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %v in the scrape:\n%s", want[missing], body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFailedReloadChangesNothing reloads a valid file whose output folder cannot be
// used (it is a regular file). The reload fails and everything stays as it was: the
// kernel threshold, the bundler writing into the old folder, and its tcpdump, which
// the next good reload hands over instead of starting a second one beside it. The
// failure is counted.
func TestFailedReloadChangesNothing(t *testing.T) {
	_, err := actions.LookPath("tcpdump")
	capture := err == nil
	f := startWith(t, time.Second, func(f *fixture) *config.Config { return f.configAt(t, f.dir, 50, capture) })
	var pid int
	if capture {
		pid = f.tcpdumpPid(t)
	} else {
		t.Log("tcpdump not installed: the capture is left out")
	}

	notDir := filepath.Join(t.TempDir(), "not-a-folder")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.agent.Reload(context.Background(), f.configAt(t, notDir, 500, capture)); err == nil {
		t.Fatal("a reload into a regular file as output folder succeeded")
	}

	// The 50 ms threshold is still the kernel's: a 150 ms READ is an event.
	before := f.h.Counters()
	f.read(150)
	if after := f.h.Counters(); after.EventsEmitted != before.EventsEmitted+1 {
		t.Fatalf("events emitted %d -> %d: the failed reload changed the kernel threshold", before.EventsEmitted, after.EventsEmitted)
	}
	path, err := f.agent.Snapshot(context.Background())
	if err != nil || filepath.Dir(path) != filepath.Join(f.dir, archive.BatchesDir) {
		t.Fatalf("snapshot after the failed reload: %q, %v; want it in %s", path, err, f.dir)
	}
	if capture {
		if got := f.tcpdumpPid(t); got != pid {
			t.Fatalf("tcpdump pid %d after the failed reload, want %d still", got, pid)
		}
	}

	// A good reload with the same capture keeps the one tcpdump running.
	if err := f.agent.Reload(context.Background(), f.configAt(t, f.dir, 500, capture)); err != nil {
		t.Fatal(err)
	}
	if capture {
		if got := f.tcpdumpPid(t); got != pid || errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			t.Fatalf("tcpdump pid %d after the good reload, want %d (alive) handed over", got, pid)
		}
	}
	f.agent.ReloadRejected() // a file that did not load counts too
	f.scrapeHas(t, series{"aod_config_reloads_total", "result", "failure", 2}, series{"aod_config_reloads_total", "result", "success", 1})
}

// TestCountersSurviveReload: a bundle written and an old bundle deleted by retention
// stay counted after a reload, on the Prometheus endpoint and over OTLP.
func TestCountersSurviveReload(t *testing.T) {
	f := startWith(t, time.Second, func(f *fixture) *config.Config {
		// A bundle a month old: retention's first sweep deletes it.
		batches := filepath.Join(f.dir, archive.BatchesDir)
		old := archive.BundleName(time.Now().AddDate(0, -1, 0), "smb", "latency")
		if err := os.MkdirAll(batches, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(batches, old), []byte("old"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f.config(t, 50)
	})
	for range 3 {
		f.read(150)
	}
	counted := []series{
		{"aod_bundles_total", "outcome", "written", 1},
		{"aod_retention_deletions_total", "kind", "bundle", 1},
		{"aod_retention_deleted_bytes_total", "", "", 3},
	}
	f.scrapeHas(t, counted...)
	if err := f.agent.Reload(context.Background(), f.config(t, 60)); err != nil {
		t.Fatal(err)
	}
	// The reload counter says the scrape comes from a collection after the reload.
	f.scrapeHas(t, append(counted, series{"aod_config_reloads_total", "result", "success", 1})...)
	telemetrytest.WaitFor(t, 20*time.Second, "an OTLP export after the reload", func() bool {
		v, ok := lastSum(f.otlp, "aod.config.reloads", "result", "success")
		return ok && v == 1
	})
	if v, ok := lastSum(f.otlp, "aod.bundles", "outcome", "written"); !ok || v != 1 {
		t.Fatalf("OTLP aod.bundles{written} after the reload: %d (found %v), want 1", v, ok)
	}
}

// TestFirstScrapeHasTheMetrics scrapes as soon as Start returns, with the next
// collection an hour away: aod's own metrics are there already.
func TestFirstScrapeHasTheMetrics(t *testing.T) {
	f := start(t, time.Hour)
	body := scrape(t, f.prom)
	for _, w := range []series{
		{"aod_events_emitted_total", "", "", 0},
		{"aod_anomalies_total", "aod_anomaly_rule", "count", 0},
		{"aod_bundles_total", "outcome", "written", 0},
		{"aod_config_reloads_total", "result", "failure", 0},
	} {
		if v, ok := w.find(t, body); !ok || v != w.want {
			t.Errorf("first scrape: %v, found %v %v", w, ok, v)
		}
	}
}

// TestSecondAgentIsRefused starts a second agent on the same output folder beside a
// running one (another control socket, another Prometheus port): it is refused, naming
// the first one's pid, and starts once the first has stopped.
func TestSecondAgentIsRefused(t *testing.T) {
	f := start(t, time.Hour)
	second := func() (*Agent, error) {
		cfg := f.config(t, 50)
		cfg.Telemetry.Prometheus.Listen = telemetrytest.FreeAddr(t)
		a, err := New(cfg, Options{
			Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
			Kernel:        f.h.Probes(),
			ProcDir:       fixtures.Path("kernel-6.12"),
			ControlSocket: filepath.Join(t.TempDir(), "second.sock"),
		})
		if err != nil {
			t.Fatal(err)
		}
		return a, a.Start(context.Background())
	}
	a, err := second()
	if !errors.Is(err, pidlock.ErrHeld) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second agent's Start: %v; want refused naming pid %d", err, os.Getpid())
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown of the refused agent: %v", err)
	}
	// The refused agent never ran: it leaves no shutdown bundle in the folder it
	// does not own.
	if m, _ := filepath.Glob(filepath.Join(f.dir, archive.BatchesDir, "*_aod_shutdown.tar.zst")); len(m) != 0 {
		t.Errorf("the refused agent wrote %v into the running agent's folder", m)
	}
	// The first still works.
	if _, err := f.agent.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.stop(t)
	a, err = second()
	if err != nil {
		t.Fatalf("after the first stopped: %v", err)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestReloadMovesTheLock reloads into another output folder: refused while another
// agent holds that folder's lock, and once it is free the agent holds the new folder's
// lock and has let the old one go.
func TestReloadMovesTheLock(t *testing.T) {
	f := start(t, time.Hour)
	next := t.TempDir()
	other, err := pidlock.Acquire(next)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.agent.Reload(context.Background(), f.configAt(t, next, 50, false)); !errors.Is(err, pidlock.ErrHeld) {
		t.Fatalf("reload into a folder another agent holds: %v, want ErrHeld", err)
	}
	if _, err := pidlock.Acquire(f.dir); !errors.Is(err, pidlock.ErrHeld) {
		t.Fatalf("after the failed reload the agent's folder is not locked: %v", err)
	}
	other.Release()
	if err := f.agent.Reload(context.Background(), f.configAt(t, next, 50, false)); err != nil {
		t.Fatal(err)
	}
	if _, err := pidlock.Acquire(next); !errors.Is(err, pidlock.ErrHeld) {
		t.Fatalf("the new folder is not locked after the reload: %v", err)
	}
	old, err := pidlock.Acquire(f.dir)
	if err != nil {
		t.Fatalf("the old folder is still locked after the reload: %v", err)
	}
	old.Release()
}

// lastSum is the newest value of the sum name with attribute key=value at s.
func lastSum(s *telemetrytest.OTLPServer, name, key, value string) (int64, bool) {
	var v int64
	ok := false
	for _, md := range s.Metrics.AllMetrics() {
		rms := md.ResourceMetrics()
		for i := range rms.Len() {
			sms := rms.At(i).ScopeMetrics()
			for j := range sms.Len() {
				ms := sms.At(j).Metrics()
				for k := range ms.Len() {
					if ms.At(k).Name() != name {
						continue
					}
					dps := ms.At(k).Sum().DataPoints()
					for l := range dps.Len() {
						if a, _ := dps.At(l).Attributes().Get(key); a.Str() == value {
							v, ok = dps.At(l).IntValue(), true
						}
					}
				}
			}
		}
	}
	return v, ok
}
