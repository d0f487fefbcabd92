package dashboards

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/linuxdiag/aod/internal/promtest"
	"github.com/linuxdiag/aod/internal/retention"
)

// The test's Prometheus scrapes every second and the agents collect every second;
// Grafana's $__rate_interval is then 4 × the scrape interval.
const scrapeInterval = time.Second

// TestQueriesAgainstPrometheus runs a real Prometheus on loopback, with alerts.yaml
// loaded, scraping two real aod agents driven through their BPF programs: one whose
// SMB and NFS servers are healthy, one whose servers turn sick (slow reads, a dropped
// share failing every request in flight, reconnects, requests never answered, events
// lost in a burst, NFS reads timing out, stale NFS file handles, no space for
// bundles, a bundle writer that hangs). It then evaluates every query of the dashboard
// and every alert rule through Prometheus's HTTP API and checks the answers: each
// returns data with the labels its legend or text prints, every metric it reads
// exists, the variables' filters hold, the NFS kernel-probe panels show exactly what
// the probes measured, and each alert fires for the sick agent and only for it.
func TestQueriesAgainstPrometheus(t *testing.T) {
	d := loadDashboard(t)
	rules := loadAlerts(t)

	healthy, troubled := startHealthy(t), startTroubled(t)
	prom := promtest.Start(t, promtest.Options{
		Targets:        []promtest.Target{healthy.target(), troubled.target()},
		RuleFiles:      []string{alertsFile},
		ScrapeInterval: scrapeInterval,
	})
	timeBPFPrograms(t)
	ctx := context.Background()
	// The harnesses run their programs on the test's goroutine: traffic flows while
	// the test waits for Prometheus, a round per poll.
	traffic := func() { healthy.step(); troubled.step() }

	// Both agents scraped with traffic before the trouble starts, so that every
	// counter's rise is seen by increase() and rate(), as it is on a long-running agent.
	prom.WaitForTargetsUp(t, traffic)
	prom.WaitForScrapeAfter(t, time.Now(), traffic)
	begin := time.Now()
	troubled.startTrouble()

	// Every alert pending or firing for the sick agent: Prometheus loaded the rules and
	// has scraped the trouble at least twice.
	prom.WaitFor(t, "every alert active for the troubled agent", func() (bool, string) {
		traffic()
		active, err := activeAlerts(ctx, prom)
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
	prom.WaitForScrapeAfter(t, time.Now(), traffic)
	end := time.Now()
	window := v1.Range{Start: begin.Add(-2 * scrapeInterval), End: end, Step: scrapeInterval}
	rangeDur := model.Duration(end.Sub(begin).Round(time.Second) + 10*time.Second).String()
	// Three more rounds, taken whole by Prometheus, for the NFS kernel-probe panels'
	// exact values.
	nfsWin := measureNFS(ctx, t, prom, []*host{healthy, troubled}, 3)

	names, _, _, err := prom.API.LabelValues(ctx, "__name__", nil, begin.Add(-time.Minute), end)
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
			check(ctx, t, prom, q, allVars(rangeDur), window, nil)
		}
	})

	// One host, server, share and command selected, written as Grafana writes them:
	// every series that carries one of these labels must have the selected value.
	t.Run("dashboard with one of each selected", func(t *testing.T) {
		picked := map[string]string{"instance": troubled.name, "server_address": "127.0.0.1", "smb_share": "share", "smb_command": "SMB2_READ",
			"system_filesystem_mountpoint": nfs3Mount, "nfs_share": nfsClients[nfs3Mount].export}
		vars := allVars(rangeDur)
		vars["host"], vars["server"] = promRegex(picked["instance"]), promRegex(picked["server_address"])
		vars["share"], vars["command"] = promRegex(picked["smb_share"]), promRegex(picked["smb_command"])
		vars["mount"] = promRegex(picked["system_filesystem_mountpoint"])
		vars["export"] = promRegex(picked["nfs_share"])
		for _, q := range dashboardQueries(d) {
			check(ctx, t, prom, q, vars, window, picked)
		}
	})

	t.Run("anomaly annotation shows protocol, type and rule", func(t *testing.T) {
		seen := map[string]bool{}
		for _, q := range annotationQueries(d) {
			for _, s := range check(ctx, t, prom, q, allVars(rangeDur), window, nil) {
				if s.Metric["instance"] != model.LabelValue(troubled.name) {
					t.Errorf("%s: anomaly on %s, which had none", q.where, s.Metric["instance"])
				}
				typ := string(s.Metric["aod_anomaly_protocol"]) + " " + string(s.Metric["aod_anomaly_type"])
				rule := string(s.Metric["aod_anomaly_rule"])
				seen[typ] = true
				// STATUS_NETWORK_NAME_DELETED is the default configuration's connection
				// rule; the reconnects are sockconn's reconnect rule; the stale handles
				// and the RPCs given up on (ETIMEDOUT) are its NFS stale and io rules.
				want := map[string][]string{"smb error": {"connection"}, "smb sockconn": {"reconnect"},
					"nfs error": {"io", "stale"}}[typ]
				if want != nil && !slices.Contains(want, rule) {
					t.Errorf("%s: %s anomaly of rule %s, want one of %v", q.where, typ, rule, want)
				}
			}
		}
		if got, want := slices.Sorted(maps.Keys(seen)), []string{"nfs error", "nfs latency", "smb error", "smb latency", "smb sockconn"}; !slices.Equal(got, want) {
			t.Errorf("anomalies annotated %v, want %v", got, want)
		}
	})

	t.Run("variables", func(t *testing.T) {
		want := map[string][]string{
			"host":    {healthy.name, troubled.name},
			"server":  {"127.0.0.1"},
			"share":   {"IPC$", "share"},
			"command": {"SMB2_CLOSE", "SMB2_CREATE", "SMB2_ECHO", "SMB2_IOCTL", "SMB2_QUERY_DIRECTORY", "SMB2_QUERY_INFO", "SMB2_READ", "SMB2_WRITE"},
			"mount":   {nfs3Mount, nfs4Mount},
			"export":  {nfsClients[nfs4Mount].export, nfsClients[nfs3Mount].export},
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
			series, _, _, err := prom.API.Series(ctx, []string{e}, window.Start, window.End)
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

	// Retention keeps the bundles between its watermarks: the healthy host sits there,
	// above 90 % of its limit, and must not alert; the troubled one is over its limit
	// with a bundle retention may not delete.
	t.Run("bundle disk use", func(t *testing.T) {
		v, _, _, err := prom.API.Query(ctx, `aod_bundle_disk_usage_bytes / aod_bundle_disk_limit_bytes`, end)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, s := range v.(model.Vector) {
			got[string(s.Metric["instance"])] = float64(s.Value)
		}
		if r := got[healthy.name]; r <= 0.9 || r >= retention.High {
			t.Errorf("healthy host's bundles use %.3f of their limit, want between 0.9 and retention's %.2f", r, retention.High)
		}
		if r := got[troubled.name]; r <= 1 {
			t.Errorf("troubled host's bundles use %.3f of their limit, want over it", r)
		}
	})

	// The NFS panels read the counters the hosts' mountstats moved: the means are per
	// RPC and in seconds, retransmissions and reconnects only where the server was sick.
	t.Run("NFS panels", func(t *testing.T) {
		nfs := func(title, refID string) map[[3]string]float64 {
			t.Helper()
			q := panelQuery(t, d, title, refID)
			q.instant = true
			out := map[[3]string]float64{}
			for _, s := range check(ctx, t, prom, q, allVars(rangeDur), window, nil) {
				k := [3]string{string(s.Metric["instance"]), string(s.Metric["system_filesystem_mountpoint"]), string(s.Metric["onc_rpc_procedure_name"])}
				out[k] = float64(s.Values[0].Value)
			}
			return out
		}
		for _, m := range []string{nfs4Mount, nfs3Mount} {
			var used []string
			for k, v := range nfs("NFS RPC rate by operation", "A") {
				if k[0] == healthy.name && k[1] == m && v > 0 {
					used = append(used, k[2])
				}
			}
			if slices.Sort(used); !slices.Equal(used, []string{"GETATTR", "LOOKUP", "READ", "WRITE"}) {
				t.Errorf("healthy host's %s: operations with RPCs %v, want GETATTR LOOKUP READ WRITE", m, used)
			}
		}
		// READ starts at 0 on both mounts of the template: its time and count grow in
		// proportion, so the mean is exact.
		for title, want := range map[string]float64{"NFS mean round-trip time by operation": 0.002, "NFS mean execution time by operation": 0.003} {
			for _, m := range []string{nfs4Mount, nfs3Mount} {
				if got := nfs(title, "A")[[3]string{healthy.name, m, "READ"}]; math.Abs(got-want) > 1e-9 {
					t.Errorf("%s: healthy host's %s READ %g s, want %g", title, m, got, want)
				}
			}
		}
		const timeouts = "NFS major timeouts and retransmissions by mount"
		connects := map[[3]string]float64{}
		for k, v := range nfs("NFS transport connects by mount", "A") {
			connects[[3]string{k[0], k[1]}] += v
		}
		for _, c := range []struct {
			what string
			got  map[[3]string]float64
		}{{"major timeouts", nfs(timeouts, "A")}, {"retransmissions", nfs(timeouts, "B")}, {"connects", connects}} {
			for _, h := range []string{healthy.name, troubled.name} {
				for _, m := range []string{nfs4Mount, nfs3Mount} {
					v, ok := c.got[[3]string{h, m}]
					if sick := h == troubled.name && m == nfs3Mount; !ok || (v > 0) != sick {
						t.Errorf("%s of %s %s: %g (present %v), want more than 0 only on the troubled host's %s", c.what, h, m, v, ok, nfs3Mount)
					}
				}
			}
		}
	})

	// The kernel-probe NFS panels, each host alone, show what its probes measured.
	t.Run("NFS kernel-probe panels", func(t *testing.T) {
		checkNFSProbePanels(ctx, t, prom, d, nfsWin)
	})

	t.Run("alert rules fire for the troubled agent only", func(t *testing.T) {
		for _, q := range alertQueries(rules) {
			for _, s := range check(ctx, t, prom, q, nil, window, nil) {
				if s.Metric["instance"] != model.LabelValue(troubled.name) {
					t.Errorf("%s: fires for %s: %v", q.where, s.Metric["instance"], s.Metric)
				}
			}
		}
		active, err := activeAlerts(ctx, prom)
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

// activeAlerts returns the alerts pending or firing by (alert name, instance).
func activeAlerts(ctx context.Context, prom *promtest.Server) (map[[2]string]v1.Alert, error) {
	res, err := prom.API.Alerts(ctx)
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
func check(ctx context.Context, t *testing.T, prom *promtest.Server, q query, vars map[string]string, window v1.Range, picked map[string]string) model.Matrix {
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
		v, warnings, infos, err = prom.API.Query(ctx, expr, window.End)
		if vec, ok := v.(model.Vector); ok {
			for _, s := range vec {
				result = append(result, &model.SampleStream{Metric: s.Metric, Values: []model.SamplePair{{Timestamp: s.Timestamp, Value: s.Value}}})
			}
		}
	} else {
		v, warnings, infos, err = prom.API.QueryRange(ctx, expr, window)
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

// panelQuery returns the query of the target refID of the panel titled title.
func panelQuery(t *testing.T, d *dashboard, title, refID string) query {
	t.Helper()
	for _, p := range d.allPanels() {
		if p.Title != title {
			continue
		}
		for _, tg := range p.Targets {
			if tg.RefID == refID {
				return query{where: fmt.Sprintf("panel %q target %s", title, refID), expr: tg.Expr, labels: templateLabels(tg.LegendFormat), instant: tg.Instant}
			}
		}
	}
	t.Fatalf("no panel %q with target %s", title, refID)
	return query{}
}
