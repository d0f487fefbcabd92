package bundler

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/linuxdiag/aod/internal/retention"
)

var (
	t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Hour)
)

func sampleStats() Stats {
	return Stats{Started: t0, Bundles: 7, BundleBytes: 7000, Failed: 1, SkippedBusy: 2, SkippedLowSpace: 3, Shrunk: 4,
		DiskLimit: 1 << 30, Retention: retention.Stats{Sweeps: 9, Deleted: 5, DeletedBytes: 500, TempsRemoved: 1,
			TempsRemovedSize: 20, TotalBytes: 123456, Measured: true}}
}

// series is one metric as both forms describe it: kind, unit and one value per
// attribute ("" when the point has none).
type series struct {
	kind, unit string
	values     map[string]int64
}

func fromPmetric(t *testing.T, md pmetric.Metrics, start, now time.Time) map[string]series {
	t.Helper()
	out := map[string]series{}
	sm := md.ResourceMetrics().At(0).ScopeMetrics().At(0)
	if sm.Scope().Name() != ScopeName {
		t.Errorf("scope %q", sm.Scope().Name())
	}
	for _, m := range sm.Metrics().All() {
		s := series{unit: m.Unit(), values: map[string]int64{}}
		var dps pmetric.NumberDataPointSlice
		switch m.Type() {
		case pmetric.MetricTypeSum:
			if !m.Sum().IsMonotonic() || m.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
				t.Errorf("%s: not a cumulative monotonic sum", m.Name())
			}
			s.kind, dps = "sum", m.Sum().DataPoints()
		case pmetric.MetricTypeGauge:
			s.kind, dps = "gauge", m.Gauge().DataPoints()
		}
		for _, dp := range dps.All() {
			if !dp.Timestamp().AsTime().Equal(now) || (s.kind == "sum" && !dp.StartTimestamp().AsTime().Equal(start)) ||
				(s.kind == "gauge" && dp.StartTimestamp() != 0) {
				t.Errorf("%s: start %v time %v", m.Name(), dp.StartTimestamp(), dp.Timestamp())
			}
			key := ""
			for k, v := range dp.Attributes().All() {
				key = k + "=" + v.Str()
			}
			s.values[key] = dp.IntValue()
		}
		if m.Description() == "" {
			t.Errorf("%s has no description", m.Name())
		}
		out[m.Name()] = s
	}
	return out
}

func TestMetrics(t *testing.T) {
	res := pcommon.NewResource()
	res.Attributes().PutStr("host.name", "client1")
	md := Metrics(sampleStats(), res, t1)
	if v, _ := md.ResourceMetrics().At(0).Resource().Attributes().Get("host.name"); v.Str() != "client1" {
		t.Errorf("resource %v", md.ResourceMetrics().At(0).Resource().Attributes().AsRaw())
	}
	got := fromPmetric(t, md, t0, t1)
	want := map[string]series{
		MetricBundles: {"sum", "{bundle}", map[string]int64{"outcome=written": 7, "outcome=failed": 1,
			"outcome=skipped_busy": 2, "outcome=skipped_low_space": 3}},
		MetricWrittenBytes:          {"sum", "By", map[string]int64{"": 7000}},
		MetricShrunk:                {"sum", "{bundle}", map[string]int64{"": 4}},
		MetricRetentionDeletions:    {"sum", "{file}", map[string]int64{"kind=bundle": 5, "kind=temporary": 1}},
		MetricRetentionDeletedBytes: {"sum", "By", map[string]int64{"": 520}},
		MetricDiskUsage:             {"gauge", "By", map[string]int64{"": 123456}},
		MetricDiskLimit:             {"gauge", "By", map[string]int64{"": 1 << 30}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("metrics\n got %v\nwant %v", got, want)
	}

	// Before the first sweep the disk use is unknown, and without a limit there is
	// none: both are left out rather than reported as 0.
	s := sampleStats()
	s.Retention.Measured, s.DiskLimit = false, 0
	got = fromPmetric(t, Metrics(s, pcommon.NewResource(), t1), t0, t1)
	if _, ok := got[MetricDiskUsage]; ok || len(got) != 5 {
		t.Errorf("unknown gauges reported: %v", got)
	}
}

// The collector exporter's meter reports what the agent's pmetric does.
func TestRegisterMetricsMatchesMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	reg, err := RegisterMetrics(mp.Meter(ScopeName), sampleStats)
	if err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]series{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			s := series{unit: m.Unit, values: map[string]int64{}}
			var dps []metricdata.DataPoint[int64]
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if !d.IsMonotonic || d.Temporality != metricdata.CumulativeTemporality {
					t.Errorf("%s: not a cumulative monotonic sum", m.Name)
				}
				s.kind, dps = "sum", d.DataPoints
			case metricdata.Gauge[int64]:
				s.kind, dps = "gauge", d.DataPoints
			}
			for _, dp := range dps {
				key := ""
				for _, kv := range dp.Attributes.ToSlice() {
					key = string(kv.Key) + "=" + kv.Value.AsString()
				}
				s.values[key] = dp.Value
			}
			got[m.Name] = s
		}
	}
	want := fromPmetric(t, Metrics(sampleStats(), pcommon.NewResource(), t1), t0, t1)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("meter\n got %v\npmetric %v", got, want)
	}
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
}

// A real bundler reports its bundle and, once retention has swept, the disk it uses.
func TestStatsAfterABundle(t *testing.T) {
	before := time.Now()
	b := newBundler(t, Options{Actions: map[Key][]string{{"smb", "latency"}: {"mounts"}}, MaxTotalBytes: 1 << 30})
	rep, err := b.Collect(context.Background(), sample())
	if err != nil {
		t.Fatal(err)
	}
	// The bundle triggers a sweep; wait for it to have counted the bundle.
	var st Stats
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		st = b.Stats()
		if st.Retention.Measured && st.Retention.TotalBytes == rep.Bytes {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("disk use never reached the bundle's %d bytes: %+v", rep.Bytes, st.Retention)
		}
	}
	if st.Bundles != 1 || st.BundleBytes != uint64(rep.Bytes) || st.DiskLimit != 1<<30 || st.Started.Before(before) {
		t.Fatalf("stats %+v", st)
	}
	now := time.Now()
	got := fromPmetric(t, Metrics(st, pcommon.NewResource(), now), st.Started, now)
	if got[MetricDiskUsage].values[""] != rep.Bytes || got[MetricBundles].values["outcome=written"] != 1 {
		t.Errorf("metrics %v", got)
	}
}
