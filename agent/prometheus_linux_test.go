package agent

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/linuxdiag/aod/bpf/bpftest"
	"github.com/linuxdiag/aod/internal/promtest"
	"github.com/linuxdiag/aod/internal/smb"
)

// TestPrometheusScrape has a real Prometheus server scrape a running agent, driven
// through the real probes, with the scrape configuration docs/dashboards.md
// recommends (honor_labels: true), and checks what Prometheus stores: metric names
// with their unit suffixes and types, the labels of each, job="aod" and the agent's
// host name as instance, and values that say the units are right (a 150 ms READ in
// the bucket of 0.25 s).
func TestPrometheusScrape(t *testing.T) {
	f := start(t, time.Second)
	prom := promtest.Start(t, promtest.Options{Targets: []promtest.Target{{Address: f.prom}}, HonorLabels: true})
	for range 3 {
		f.read(150) // over the 50 ms threshold: three make a latency anomaly and a bundle
	}
	f.read(1)
	notFound, _ := smb.LookupStatus("STATUS_OBJECT_NAME_NOT_FOUND")
	f.h.Request(bpftest.Request{Session: session, Tree: tree, Command: smb.Create, Latency: time.Millisecond, Status: notFound, Rc: -2})

	ctx := context.Background()
	// The bundle is counted once written, and everything else was collected by then.
	prom.WaitFor(t, "the bundle counted", func() (bool, string) {
		v, err := prom.Query(ctx, `aod_bundles_total{outcome="written"} == 1`)
		return err == nil && len(v) == 1, fmt.Sprint(v, err)
	})

	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	share := model.LabelSet{"server_address": "127.0.0.1", "smb_share": "share"}
	for _, c := range []struct {
		expr   string
		labels []model.LabelName // every label of each series, besides __name__, job and instance
		want   map[string]float64
		key    model.LabelName // the label want is keyed by
	}{
		{
			expr:   `smb_client_operation_duration_seconds_bucket{smb_command="SMB2_READ", le=~"0.125|0.25|\\+Inf"}`,
			labels: []model.LabelName{"le", "server_address", "smb_command", "smb_share"},
			want:   map[string]float64{"0.125": 1, "0.25": 4, "+Inf": 4}, key: "le",
		},
		{
			expr:   `smb_client_operation_duration_seconds_count{smb_command="SMB2_CREATE"}`,
			labels: []model.LabelName{"error_type", "server_address", "smb_command", "smb_share"},
			want:   map[string]float64{"STATUS_OBJECT_NAME_NOT_FOUND": 1}, key: "error_type",
		},
		{
			expr:   `smb_client_errors_total`,
			labels: []model.LabelName{"error_type", "server_address", "smb_command", "smb_share"},
			want:   map[string]float64{"STATUS_OBJECT_NAME_NOT_FOUND": 1}, key: "error_type",
		},
		{
			expr:   `aod_anomalies_total{aod_anomaly_type="latency"}`,
			labels: []model.LabelName{"aod_anomaly_protocol", "aod_anomaly_rule", "aod_anomaly_type"},
			want:   map[string]float64{"count": 1, "ceiling": 0}, key: "aod_anomaly_rule",
		},
		{
			expr:   `aod_bundles_total`,
			labels: []model.LabelName{"outcome"},
			want:   map[string]float64{"written": 1, "failed": 0, "skipped_busy": 0, "skipped_low_space": 0}, key: "outcome",
		},
		{
			expr:   `aod_bundle_written_bytes_total > 0`,
			labels: []model.LabelName{},
		},
		{
			expr:   `aod_bundle_disk_usage_bytes > 0`,
			labels: []model.LabelName{},
		},
	} {
		v, err := prom.Query(ctx, c.expr)
		if err != nil {
			t.Fatal(err)
		}
		if len(v) == 0 {
			t.Errorf("%s: no series", c.expr)
			continue
		}
		got := map[string]float64{}
		for _, s := range v {
			var names []model.LabelName
			for l := range s.Metric {
				if l != model.MetricNameLabel && l != "job" && l != "instance" {
					names = append(names, l)
				}
			}
			slices.Sort(names)
			if !slices.Equal(names, c.labels) {
				t.Errorf("%s: series %v has labels %v, want %v", c.expr, s.Metric, names, c.labels)
			}
			if s.Metric["job"] != "aod" || s.Metric["instance"] != model.LabelValue(host) {
				t.Errorf("%s: series %v: want job aod and instance %s (honor_labels)", c.expr, s.Metric, host)
			}
			for l, val := range share {
				if _, ok := s.Metric[l]; ok && s.Metric[l] != val {
					t.Errorf("%s: series %v: want %s=%s", c.expr, s.Metric, l, val)
				}
			}
			if c.key != "" {
				got[string(s.Metric[c.key])] += float64(s.Value)
			}
		}
		for k, want := range c.want {
			if g, ok := got[k]; !ok || g != want {
				t.Errorf("%s: %s=%s is %v (present %v), want %v", c.expr, c.key, k, g, ok, want)
			}
		}
	}

	// The metric families as Prometheus typed them: the unit is in the name, and
	// counters end in _total.
	meta, err := prom.API.Metadata(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for name, typ := range map[string]v1.MetricType{
		"smb_client_operation_duration_seconds": v1.MetricTypeHistogram,
		"smb_client_errors_total":               v1.MetricTypeCounter,
		"aod_anomalies_total":                   v1.MetricTypeCounter,
		"aod_bundles_total":                     v1.MetricTypeCounter,
		"aod_bundle_written_bytes_total":        v1.MetricTypeCounter,
		"aod_bundle_disk_usage_bytes":           v1.MetricTypeGauge,
		"aod_bundle_disk_limit_bytes":           v1.MetricTypeGauge,
		"aod_ring_fill_ratio":                   v1.MetricTypeGauge,
	} {
		if m := meta[name]; len(m) == 0 || m[0].Type != typ {
			t.Errorf("metric family %s: metadata %+v, want type %s", name, m, typ)
		}
	}
	for name := range meta {
		if strings.HasPrefix(name, "exported_") {
			t.Errorf("metric %s: honor_labels should have kept the served labels", name)
		}
	}
}
