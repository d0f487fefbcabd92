package dashboards

import (
	"context"
	"fmt"
	"maps"
	"math"
	"strings"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/linuxdiag/aod/internal/promtest"
)

// nfsWindow is a stretch of NFS traffic Prometheus holds whole on every host: the
// RPCs the hosts' probes measured in it, and per host the times of its first sample
// (taken after every RPC before the window was scraped) and its last sample (taken
// after every RPC of the window was).
type nfsWindow struct {
	fed         map[string]map[rpcKey]int // by host name
	first, last map[string]time.Time
}

// measureNFS runs rounds of traffic on the hosts between two points where the
// hosts' agents have exported, and Prometheus scraped, every RPC their probes
// measured, and returns that window.
func measureNFS(ctx context.Context, t *testing.T, prom *promtest.Server, hosts []*host, rounds int) nfsWindow {
	t.Helper()
	settleNFS(ctx, t, prom, hosts)
	start := time.Now()
	// Every host scraped at least once with nothing in flight: the window's first sample.
	prom.WaitForScrapeAfter(t, start, nil)
	w := nfsWindow{fed: map[string]map[rpcKey]int{}, first: map[string]time.Time{}, last: map[string]time.Time{}}
	before := map[string]map[rpcKey]int{}
	for _, h := range hosts {
		before[h.name] = maps.Clone(h.fed)
	}
	for range rounds {
		for _, h := range hosts {
			h.step()
		}
	}
	settleNFS(ctx, t, prom, hosts)
	now := time.Now()
	for _, h := range hosts {
		w.fed[h.name] = map[rpcKey]int{}
		for k, n := range h.fed {
			if d := n - before[h.name][k]; d > 0 {
				w.fed[h.name][k] = d
			}
		}
		// The samples of one target share their times: any series gives them.
		expr := fmt.Sprintf(`nfs_client_operation_duration_seconds_count{instance=%q}[%dms]`, h.name, now.Sub(start).Milliseconds())
		v, _, _, err := prom.API.Query(ctx, expr, now)
		if err != nil {
			t.Fatal(err)
		}
		m, ok := v.(model.Matrix)
		if !ok || len(m) == 0 || len(m[0].Values) < 2 {
			t.Fatalf("%s: %v, want two samples or more of a series", expr, v)
		}
		vals := m[0].Values
		w.first[h.name], w.last[h.name] = vals[0].Timestamp.Time(), vals[len(vals)-1].Timestamp.Time()
	}
	return w
}

// settleNFS waits until Prometheus holds every RPC the hosts' probes measured, and
// every export its series. The agent names an RPC client by the mount whose
// mountstats counters grew as the client's RPCs did, which takes RPCs: while some
// host has an export with no series yet, a round of traffic runs at each poll. The
// RPCs a client completed before it was named stay in a series without an export
// (the exporter keeps every series it was given for as long as the agent runs), so
// the totals are compared per procedure over every series; a collection that falls
// between a round's RPCs and its mountstats write delays the naming by a collection,
// and the RPCs it counted are the frozen series'.
func settleNFS(ctx context.Context, t *testing.T, prom *promtest.Server, hosts []*host) {
	t.Helper()
	prom.WaitFor(t, "every NFS RPC scraped and every export named", func() (bool, string) {
		named, err := prom.Query(ctx, `count by (instance, nfs_share) (nfs_client_operation_duration_seconds_count{nfs_share!=""})`)
		if err != nil {
			return false, err.Error()
		}
		all, err := prom.Query(ctx, `sum by (instance, nfs_command) (nfs_client_operation_duration_seconds_count)`)
		if err != nil {
			return false, err.Error()
		}
		gotExports, gotRPCs := map[[2]string]bool{}, map[[2]string]float64{}
		for _, s := range named {
			gotExports[[2]string{string(s.Metric["instance"]), string(s.Metric["nfs_share"])}] = true
		}
		for _, s := range all {
			gotRPCs[[2]string{string(s.Metric["instance"]), string(s.Metric["nfs_command"])}] = float64(s.Value)
		}
		exports, rpcs := map[[2]string]bool{}, map[[2]string]float64{}
		for _, h := range hosts {
			for k, n := range h.fed {
				if k.share != "" {
					exports[[2]string{h.name, k.share}] = true
				}
				rpcs[[2]string{h.name, k.command}] += float64(n)
			}
		}
		if !maps.Equal(gotExports, exports) {
			for _, h := range hosts {
				h.step()
			}
			return false, fmt.Sprintf("exports named %v, fed %v", gotExports, exports)
		}
		if !maps.Equal(gotRPCs, rpcs) {
			return false, fmt.Sprintf("RPCs by procedure scraped %v, fed %v", gotRPCs, rpcs)
		}
		return true, ""
	})
}

// explicitBounds are the bucket bounds of the classic histograms aod exports
// (docs/metrics.md): 2^e s for e = −14 … 6.
func explicitBounds() []float64 {
	var b []float64
	for e := -14; e <= 6; e++ {
		b = append(b, math.Ldexp(1, e))
	}
	return b
}

// histogramQuantile is PromQL's histogram_quantile over the explicit buckets of
// latencies (latency -> RPCs): the bucket holding the q-quantile's rank, interpolated
// linearly within it.
func histogramQuantile(q float64, latencies map[time.Duration]int) float64 {
	bounds := explicitBounds()
	cum := make([]float64, len(bounds)+1) // +Inf last
	var total float64
	for d, n := range latencies {
		i := 0
		for i < len(bounds) && d.Seconds() > bounds[i] {
			i++
		}
		for j := i; j < len(cum); j++ {
			cum[j] += float64(n)
		}
		total += float64(n)
	}
	rank := q * total
	b := 0
	for b < len(bounds) && cum[b] < rank {
		b++
	}
	if b == len(bounds) {
		return bounds[len(bounds)-1]
	}
	start, count := 0.0, cum[b]
	if b > 0 {
		start, count, rank = bounds[b-1], cum[b]-cum[b-1], rank-cum[b-1]
	}
	return start + (bounds[b]-start)*rank/count
}

// checkNFSProbePanels evaluates the kernel-probe NFS panels for each host alone
// over the window w and compares every value with what the probes measured: the
// percentiles with histogram_quantile over the measured latencies, the rates with the
// RPCs over the time between the window's samples, the table's increases with the
// same RPCs (Prometheus extrapolates them to the range, which starts 1 ms before the
// first sample and ends at the last).
func checkNFSProbePanels(ctx context.Context, t *testing.T, prom *promtest.Server, d *dashboard, w nfsWindow) {
	for h, fed := range w.fed {
		span := w.last[h].Sub(w.first[h])
		rng := fmt.Sprintf("%dms", (span + time.Millisecond).Milliseconds())
		vars := allVars(rng)
		vars["host"], vars["__rate_interval"] = promRegex(h), rng
		at := v1.Range{End: w.last[h]}
		rate := func(n int) float64 { return float64(n) / span.Seconds() }
		increase := func(n int) float64 { return float64(n) * float64(span+time.Millisecond) / float64(span) }

		latencies := map[string]map[time.Duration]int{} // by command, then by export
		byExport := map[string]map[time.Duration]int{}
		rpcs, failed, byStatus := map[string]float64{}, map[string]float64{}, map[string]float64{}
		failures := map[string]float64{}
		add := func(m map[string]map[time.Duration]int, key string, k rpcKey, n int) {
			if m[key] == nil {
				m[key] = map[time.Duration]int{}
			}
			m[key][k.latency] += n
		}
		for k, n := range fed {
			add(latencies, k.command, k, n)
			if k.share != "" { // the per-export panel leaves out RPCs without an export
				add(byExport, k.server+":"+k.share, k, n)
			}
			rpcs[k.command] += rate(n)
			if k.errorType != "" {
				failed[k.command] += rate(n)
				byStatus[k.errorType] += rate(n)
				failures[strings.Join([]string{k.errorType, k.command, k.server, k.share}, " ")] += increase(n)
			}
		}
		quantiles := func(m map[string]map[time.Duration]int, q float64) map[string]float64 {
			out := map[string]float64{}
			for key, lat := range m {
				out[key] = histogramQuantile(q, lat)
			}
			return out
		}
		const byProc, byExp = "NFS latency by procedure (p50, p95, p99)", "NFS latency by export (p50, p95, p99)"
		command := labelKey(" ", "nfs_command")
		export := labelKey(":", "server_address", "nfs_share")
		for _, c := range []struct {
			title, refID string
			key          func(model.Metric) string
			want         map[string]float64
		}{
			{byProc, "A", command, quantiles(latencies, 0.5)},
			{byProc, "B", command, quantiles(latencies, 0.95)},
			{byProc, "C", command, quantiles(latencies, 0.99)},
			{byExp, "A", export, quantiles(byExport, 0.5)},
			{byExp, "B", export, quantiles(byExport, 0.95)},
			{byExp, "C", export, quantiles(byExport, 0.99)},
			{"NFS RPC rate by procedure", "A", command, rpcs},
			{"NFS failed RPCs by procedure", "A", command, failed},
			{"NFS failed RPCs by status", "A", labelKey(" ", "error_type"), byStatus},
			{"NFS failures in the time range", "A", labelKey(" ", "error_type", "nfs_command", "server_address", "nfs_share"), failures},
		} {
			q := panelQuery(t, d, c.title, c.refID)
			q.instant = true
			got := map[string]float64{}
			for _, s := range check(ctx, t, prom, q, vars, at, nil) {
				got[c.key(s.Metric)] = float64(s.Values[0].Value)
			}
			if !sameValues(got, c.want) {
				t.Errorf("%s target %s on %s: got %v, want %v", c.title, c.refID, h, got, c.want)
			}
		}
	}
}

// labelKey returns the values of labels in a series, joined by sep.
func labelKey(sep string, labels ...model.LabelName) func(model.Metric) string {
	return func(m model.Metric) string {
		vals := make([]string, len(labels))
		for i, l := range labels {
			vals[i] = string(m[l])
		}
		return strings.Join(vals, sep)
	}
}

// sameValues reports whether got and want have the same keys and values equal to
// within float rounding.
func sameValues(got, want map[string]float64) bool {
	if len(got) != len(want) {
		return false
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok || math.Abs(g-w) > 1e-9*math.Max(1, math.Abs(w)) {
			return false
		}
	}
	return true
}
