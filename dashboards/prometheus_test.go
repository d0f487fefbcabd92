package dashboards

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// The test's Prometheus scrapes every second; Grafana's $__rate_interval is then
// 4 × the scrape interval.
const (
	scrapeInterval = time.Second
	stepInterval   = 250 * time.Millisecond // how often a simulated agent collects
)

// TestQueriesAgainstPrometheus runs a real Prometheus on loopback, with alerts.yaml
// loaded, scraping two simulated aod agents: one whose SMB server is healthy, one
// whose server turns sick (slow reads, dropped shares, reconnects, lost events, no
// space for bundles). It then evaluates every query of the dashboard and every alert
// rule through Prometheus's HTTP API and checks the answers: each returns data with
// the labels its legend or text prints, every metric it reads exists, the variables'
// filters hold, and each alert fires for the sick agent and only for it.
func TestQueriesAgainstPrometheus(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus not installed (Debian package prometheus; CI installs it)")
	}
	d := loadDashboard(t)
	rules := loadAlerts(t)

	healthy := startHost(t, "healthy", healthyLoad(t), nil, 0, stepInterval)
	troubled := startHost(t, "troubled", healthyLoad(t), troubledLoad(t), 1e12, stepInterval)
	prom := startPrometheus(t, bin, healthy.addr, troubled.addr)
	ctx := context.Background()

	// Both agents scraped before the trouble starts, so that every counter's rise is
	// seen by increase() and rate(), as it is on a long-running agent.
	prom.waitFor(t, "both agents scraped", func() (bool, string) {
		v, err := prom.instant(ctx, `count(up == 1)`)
		return err == nil && len(v) == 1 && v[0].Value == 2, fmt.Sprint(v, err)
	})
	begin := time.Now()
	troubled.startTrouble()

	// Every alert pending or firing for the sick agent: Prometheus loaded the rules and
	// has scraped the trouble at least twice.
	prom.waitFor(t, "every alert active for the troubled agent", func() (bool, string) {
		active, err := prom.activeAlerts(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, r := range rules {
			if _, ok := active[[2]string{r.Alert, troubled.name}]; !ok {
				return false, fmt.Sprintf("%s not active; active: %v", r.Alert, slices.Collect(maps.Keys(active)))
			}
		}
		return true, ""
	})
	// One more scrape, so that the range queries' last step sees the rates too.
	after := time.Now()
	prom.waitFor(t, "a scrape after the alerts", func() (bool, string) {
		v, err := prom.instant(ctx, `min(timestamp(up))`)
		return err == nil && len(v) == 1 && float64(v[0].Value) > float64(after.UnixMilli())/1e3, fmt.Sprint(v, err)
	})
	end := time.Now()
	window := v1.Range{Start: begin.Add(-2 * scrapeInterval), End: end, Step: scrapeInterval}
	rangeDur := model.Duration(end.Sub(begin).Round(time.Second) + 10*time.Second).String()

	names, _, _, err := prom.api.LabelValues(ctx, "__name__", nil, begin.Add(-time.Minute), end)
	if err != nil {
		t.Fatal(err)
	}
	exists := map[string]bool{}
	for _, n := range names {
		exists[string(n)] = true
	}

	t.Run("metrics exist", func(t *testing.T) {
		qs := append(dashboardQueries(d), alertQueries(rules)...)
		for _, v := range d.Templating.List {
			if sel, _, ok := variableQuery(v.Query); ok {
				qs = append(qs, query{where: "variable " + v.Name, expr: sel})
			}
		}
		for _, q := range qs {
			e, err := expand(q.expr, allVars(rangeDur))
			if err != nil {
				t.Fatalf("%s: %v", q.where, err)
			}
			used, err := metricNames(e)
			if err != nil {
				t.Fatalf("%s: %v", q.where, err)
			}
			for _, n := range used {
				if !exists[n] {
					t.Errorf("%s reads %s, which aod does not export", q.where, n)
				}
			}
		}
	})

	t.Run("dashboard with all selected", func(t *testing.T) {
		for _, q := range dashboardQueries(d) {
			prom.check(ctx, t, q, allVars(rangeDur), window, nil)
		}
	})

	// One host, server, share and command selected, written as Grafana writes them:
	// every series that carries one of these labels must have the selected value.
	t.Run("dashboard with one of each selected", func(t *testing.T) {
		picked := map[string]string{"instance": troubled.name, "server_address": "127.0.0.1", "smb_share": "share", "smb_command": "SMB2_READ"}
		vars := allVars(rangeDur)
		vars["host"], vars["server"] = promRegex(picked["instance"]), promRegex(picked["server_address"])
		vars["share"], vars["command"] = promRegex(picked["smb_share"]), promRegex(picked["smb_command"])
		for _, q := range dashboardQueries(d) {
			prom.check(ctx, t, q, vars, window, picked)
		}
	})

	t.Run("anomaly annotation shows type and rule", func(t *testing.T) {
		var seen []string
		for _, q := range annotationQueries(d) {
			for _, s := range prom.check(ctx, t, q, allVars(rangeDur), window, nil) {
				if s.Metric["instance"] != model.LabelValue(troubled.name) {
					t.Errorf("%s: anomaly on %s, which had none", q.where, s.Metric["instance"])
				}
				seen = append(seen, string(s.Metric["aod_anomaly_type"]))
				if s.Metric["aod_anomaly_type"] == "error" && s.Metric["aod_anomaly_rule"] != "connection" {
					t.Errorf("%s: error anomaly of rule %s, want connection (STATUS_NETWORK_NAME_DELETED)", q.where, s.Metric["aod_anomaly_rule"])
				}
			}
		}
		slices.Sort(seen)
		if want := []string{"error", "latency"}; !slices.Equal(slices.Compact(seen), want) {
			t.Errorf("anomaly types annotated %v, want %v", seen, want)
		}
	})

	t.Run("variables", func(t *testing.T) {
		want := map[string][]string{
			"host":    {healthy.name, troubled.name},
			"server":  {"127.0.0.1"},
			"share":   {"IPC$", "share"},
			"command": {"SMB2_CLOSE", "SMB2_CREATE", "SMB2_ECHO", "SMB2_IOCTL", "SMB2_QUERY_DIRECTORY", "SMB2_QUERY_INFO", "SMB2_READ", "SMB2_WRITE"},
		}
		for _, v := range d.Templating.List {
			sel, label, ok := variableQuery(v.Query)
			if !ok {
				continue
			}
			e, err := expand(sel, allVars(rangeDur))
			if err != nil {
				t.Fatal(err)
			}
			series, _, _, err := prom.api.Series(ctx, []string{e}, window.Start, window.End)
			if err != nil {
				t.Errorf("variable %s: %v", v.Name, err)
				continue
			}
			var got []string
			for _, s := range series {
				if val := string(s[model.LabelName(label)]); val != "" {
					got = append(got, val)
				}
			}
			slices.Sort(got)
			if got = slices.Compact(got); !slices.Equal(got, want[v.Name]) {
				t.Errorf("variable %s offers %v, want %v", v.Name, got, want[v.Name])
			}
		}
	})

	t.Run("alert rules fire for the troubled agent only", func(t *testing.T) {
		for _, q := range alertQueries(rules) {
			for _, s := range prom.check(ctx, t, q, nil, window, nil) {
				if s.Metric["instance"] != model.LabelValue(troubled.name) {
					t.Errorf("%s: fires for %s: %v", q.where, s.Metric["instance"], s.Metric)
				}
			}
		}
		active, err := prom.activeAlerts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for k, a := range active {
			if k[1] != troubled.name {
				t.Errorf("alert %s active for %s", k[0], k[1])
			}
			// The templates rendered with the alert's own labels and value.
			for name, text := range a.Annotations {
				if text == "" || strings.Contains(string(text), "<no value>") || strings.Contains(string(text), "{{") {
					t.Errorf("alert %s: annotation %s rendered as %q", k[0], name, text)
				}
			}
		}
	})
}

// promServer is a Prometheus server the test started.
type promServer struct {
	api v1.API
	log *syncBuffer
}

// startPrometheus runs prometheus on a free loopback port with alerts.yaml loaded,
// scraping each target (host:port) every second, and waits until it is ready. It is
// stopped when the test ends.
func startPrometheus(t *testing.T, bin string, targets ...string) *promServer {
	t.Helper()
	dir := t.TempDir()
	rules, err := filepath.Abs(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: %s\n",
		model.Duration(scrapeInterval), model.Duration(scrapeInterval), model.Duration(scrapeInterval))
	fmt.Fprintf(&cfg, "rule_files:\n  - %q\n", rules)
	// honor_labels keeps the instance label aod serves (its host name), as
	// docs/dashboards.md recommends.
	fmt.Fprintf(&cfg, "scrape_configs:\n  - job_name: aod\n    honor_labels: true\n    static_configs:\n")
	for _, addr := range targets {
		fmt.Fprintf(&cfg, "      - targets: [%q]\n", addr)
	}
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	addr := freeAddr(t)
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
			t.Logf("prometheus configuration:\n%s\nprometheus log:\n%s", cfg.String(), log.String())
		}
	})

	client, err := api.NewClient(api.Config{Address: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	p := &promServer{api: v1.NewAPI(client), log: log}
	p.waitFor(t, "prometheus ready", func() (bool, string) {
		select {
		case err := <-exited:
			t.Fatalf("prometheus exited: %v\n%s", err, log.String())
		default:
		}
		_, err := p.api.Buildinfo(context.Background())
		return err == nil, fmt.Sprint(err)
	})
	return p
}

// waitFor polls cond until it holds; it fails the test, with cond's last word, after
// a deadline far above what a loaded machine needs.
func (p *promServer) waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %s", what, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *promServer) instant(ctx context.Context, q string) (model.Vector, error) {
	v, _, _, err := p.api.Query(ctx, q, time.Now())
	if err != nil {
		return nil, err
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("%s: %s result, want a vector", q, v.Type())
	}
	return vec, nil
}

// activeAlerts returns the alerts pending or firing by (alert name, instance).
func (p *promServer) activeAlerts(ctx context.Context) (map[[2]string]v1.Alert, error) {
	res, err := p.api.Alerts(ctx)
	if err != nil {
		return nil, err
	}
	active := map[[2]string]v1.Alert{}
	for _, a := range res.Alerts {
		active[[2]string{string(a.Labels["alertname"]), string(a.Labels["instance"])}] = a
	}
	return active, nil
}

// check evaluates one query, a range query unless it is instant, with vars
// substituted (nil: the expression has none), and checks the answer: at least one
// series, each with every label the query prints, some value a number (not NaN: a
// quantile over the wrong labels gives NaN everywhere), and each label of picked the
// series carries at its picked value. It returns the series, as a range.
func (p *promServer) check(ctx context.Context, t *testing.T, q query, vars map[string]string, window v1.Range, picked map[string]string) model.Matrix {
	t.Helper()
	expr := q.expr
	if vars != nil {
		var err error
		if expr, err = expand(q.expr, vars); err != nil {
			t.Errorf("%s: %v", q.where, err)
			return nil
		}
	}
	var result model.Matrix
	var err error
	var warnings v1.Warnings
	var infos v1.Infos
	var v model.Value
	if q.instant {
		v, warnings, infos, err = p.api.Query(ctx, expr, window.End)
		if vec, ok := v.(model.Vector); ok {
			for _, s := range vec {
				result = append(result, &model.SampleStream{Metric: s.Metric, Values: []model.SamplePair{{Timestamp: s.Timestamp, Value: s.Value}}})
			}
		}
	} else {
		v, warnings, infos, err = p.api.QueryRange(ctx, expr, window)
		result, _ = v.(model.Matrix)
	}
	switch {
	case err != nil:
		t.Errorf("%s: %v\n%s", q.where, err, expr)
		return nil
	case len(warnings) > 0 || len(infos) > 0:
		t.Errorf("%s: warnings %v %v\n%s", q.where, warnings, infos, expr)
	case len(result) == 0:
		t.Errorf("%s: no data\n%s", q.where, expr)
		return nil
	}
	var number bool
	for _, s := range result {
		for _, l := range q.labels {
			if s.Metric[model.LabelName(l)] == "" {
				t.Errorf("%s: series %v lacks label %s", q.where, s.Metric, l)
			}
		}
		for l, want := range picked {
			if got, ok := s.Metric[model.LabelName(l)]; ok && string(got) != want {
				t.Errorf("%s: series %v with %s selected", q.where, s.Metric, want)
			}
		}
		for _, sp := range s.Values {
			number = number || !math.IsNaN(float64(sp.Value))
		}
	}
	if !number {
		t.Errorf("%s: every value is NaN\n%s", q.where, expr)
	}
	return result
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
