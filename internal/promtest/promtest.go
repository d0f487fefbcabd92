// Package promtest runs a real Prometheus server (Debian's prometheus package) on
// loopback for tests that check what Prometheus makes of aod's metrics: it scrapes the
// targets a test names, loads its rule files, and answers PromQL through the HTTP API.
//
//	prom := promtest.Start(t, promtest.Options{Targets: []promtest.Target{{Address: addr}}})
//	prom.WaitForTargetsUp(t)
//	v, err := prom.Query(ctx, `smb_client_errors_total`)
//
// Start skips the test, saying why, where the prometheus binary is not installed.
// Everything else fails the test on error; the server stops when the test ends, and
// its configuration and log are printed if the test failed.
package promtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/linuxdiag/aod/internal/telemetry/telemetrytest"
)

// Binary is the Prometheus server Start runs, looked up in PATH.
const Binary = "prometheus"

// DefaultScrapeInterval is the scrape and rule evaluation interval when Options leaves
// it unset: short, so that rates and alerts have data within seconds.
const DefaultScrapeInterval = time.Second

// DefaultJob is the scrape job's name when Options leaves it unset.
const DefaultJob = "aod"

// waitTimeout bounds every wait: far above what a loaded machine needs, so that a
// timeout means the condition never came true.
const waitTimeout = 45 * time.Second

// Target is one endpoint Prometheus scrapes.
type Target struct {
	// Address is the host:port serving /metrics.
	Address string
	// Labels are the target's labels in the scrape configuration, e.g. instance to
	// name it; without, instance is Address.
	Labels map[string]string
}

// Options configure the server.
type Options struct {
	// Targets are scraped by one job.
	Targets []Target
	// RuleFiles are loaded as rule_files (alerting and recording rules); relative
	// paths are taken from the test's working directory.
	RuleFiles []string
	// ScrapeInterval is the scrape interval, scrape timeout and rule evaluation
	// interval (default DefaultScrapeInterval).
	ScrapeInterval time.Duration
	// HonorLabels keeps the job and instance labels the targets serve
	// (honor_labels: true); otherwise Prometheus sets its own and stores the served
	// ones as exported_job and exported_instance.
	HonorLabels bool
	// Job is the scrape job's name (default DefaultJob).
	Job string
}

// Server is a running Prometheus.
type Server struct {
	// API is the HTTP API client, for what Query and the waits do not cover.
	API  v1.API
	opts Options
}

// The parts of prometheus.yml that Start writes.
type (
	config struct {
		Global        global         `yaml:"global"`
		RuleFiles     []string       `yaml:"rule_files,omitempty"`
		ScrapeConfigs []scrapeConfig `yaml:"scrape_configs"`
	}
	global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		ScrapeTimeout      string `yaml:"scrape_timeout"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	}
	scrapeConfig struct {
		JobName       string         `yaml:"job_name"`
		HonorLabels   bool           `yaml:"honor_labels"`
		StaticConfigs []staticConfig `yaml:"static_configs"`
	}
	staticConfig struct {
		Targets []string          `yaml:"targets"`
		Labels  map[string]string `yaml:"labels,omitempty"`
	}
)

// Start runs prometheus on a free loopback port with o's scrape configuration and
// rules, with its storage in a temporary directory, and waits until it answers. It
// skips the test when prometheus is not installed.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin, err := exec.LookPath(Binary)
	if err != nil {
		t.Skipf("promtest: %s not installed (Debian package prometheus; CI installs it): %v", Binary, err)
	}
	if o.ScrapeInterval <= 0 {
		o.ScrapeInterval = DefaultScrapeInterval
	}
	if o.Job == "" {
		o.Job = DefaultJob
	}
	interval := model.Duration(o.ScrapeInterval).String()
	cfg := config{
		Global:        global{ScrapeInterval: interval, ScrapeTimeout: interval, EvaluationInterval: interval},
		ScrapeConfigs: []scrapeConfig{{JobName: o.Job, HonorLabels: o.HonorLabels}},
	}
	for _, f := range o.RuleFiles {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		cfg.RuleFiles = append(cfg.RuleFiles, abs)
	}
	for _, tg := range o.Targets {
		cfg.ScrapeConfigs[0].StaticConfigs = append(cfg.ScrapeConfigs[0].StaticConfigs,
			staticConfig{Targets: []string{tg.Address}, Labels: tg.Labels})
	}
	text, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, text, 0o644); err != nil {
		t.Fatal(err)
	}

	addr := telemetrytest.FreeAddr(t)
	log := &syncBuffer{}
	cmd := exec.Command(bin,
		"--config.file="+cfgFile,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus configuration:\n%s\nprometheus log:\n%s", text, log.String())
		}
	})

	client, err := api.NewClient(api.Config{Address: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{API: v1.NewAPI(client), opts: o}
	s.WaitFor(t, "prometheus ready", func() (bool, string) {
		select {
		case err := <-exited:
			t.Fatalf("promtest: prometheus exited: %v\n%s", err, log.String())
		default:
		}
		_, err := s.API.Buildinfo(context.Background())
		return err == nil, fmt.Sprint(err)
	})
	return s
}

// Query evaluates expr now; the result must be an instant vector.
func (s *Server) Query(ctx context.Context, expr string) (model.Vector, error) {
	v, _, _, err := s.API.Query(ctx, expr, time.Now())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", expr, err)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("%s: %s result, want a vector", expr, v.Type())
	}
	return vec, nil
}

// WaitFor polls cond until it holds. cond also says what it saw, which the failure
// message quotes when the wait times out. A test may do work in cond (drive traffic,
// say) between its queries.
func (s *Server) WaitFor(t testing.TB, what string, cond func() (ok bool, state string)) {
	t.Helper()
	var state string
	deadline := time.Now().Add(waitTimeout)
	for {
		var ok bool
		if ok, state = cond(); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("promtest: timed out after %v waiting for %s: %s", waitTimeout, what, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitForTargetsUp waits until Prometheus has scraped every target successfully;
// each poll first runs every, if not nil (to keep traffic going, say).
func (s *Server) WaitForTargetsUp(t testing.TB, every func()) {
	t.Helper()
	want := len(s.opts.Targets)
	s.WaitFor(t, fmt.Sprintf("%d targets up", want), func() (bool, string) {
		if every != nil {
			every()
		}
		v, err := s.Query(context.Background(), `up == 1`)
		return err == nil && len(v) == want, fmt.Sprint(v, err)
	})
}

// WaitForScrapeAfter waits until every target has been scraped after t0, so that
// whatever the targets served at t0 is stored; each poll first runs every, if not nil.
func (s *Server) WaitForScrapeAfter(t testing.TB, t0 time.Time, every func()) {
	t.Helper()
	s.WaitFor(t, "a scrape of every target after "+t0.Format(time.RFC3339Nano), func() (bool, string) {
		if every != nil {
			every()
		}
		v, err := s.Query(context.Background(), `timestamp(up)`)
		if err != nil || len(v) != len(s.opts.Targets) {
			return false, fmt.Sprint(v, err)
		}
		return !slices.ContainsFunc(v, func(s *model.Sample) bool {
			return float64(s.Value) <= float64(t0.UnixMilli())/1e3
		}), fmt.Sprint(v)
	})
}

// syncBuffer collects a child's output written from its own goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
