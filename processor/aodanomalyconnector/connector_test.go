package aodanomalyconnector

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/linuxdiag/aod/internal/anomalypdata"
	"github.com/linuxdiag/aod/internal/cifsproc"
	"github.com/linuxdiag/aod/internal/detector"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/fixtures"
	"github.com/linuxdiag/aod/internal/otelconv"
	"github.com/linuxdiag/aod/internal/podattr"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/smb"
	"github.com/linuxdiag/aod/processor/aodanomalyconnector/internal/metadata"
)

// fixedClock stands for the receiver's monotonic-to-wall converter: monotonic time 0 is
// t0.
type fixedClock struct{}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func (fixedClock) UnixNano(mono uint64) int64 { return t0.UnixNano() + int64(mono) }

// names knows one share.
type names struct{}

func (names) Lookup(_ proto.Protocol, session uint64, tree uint32) (cifsproc.Name, bool) {
	if session == 7 && tree == 1 {
		return cifsproc.Name{Server: "srv", Share: "data"}, true
	}
	return cifsproc.Name{}, false
}

// logsOf builds records exactly as the aod receiver does.
// podCgroup is the cgroup of slow's requests, which the receiver names as podWorkload.
const podCgroup = 0x77

var podWorkload = podattr.Workload{Cgroup: "/kubepods.slice/x", PodUID: "0b6e5c2f-9d43-4c8e-a2b1-3f1e6d7c8a90",
	Namespace: "shop", PodName: "web", ContainerName: "app"}

type podNames struct{}

func (podNames) Lookup(id uint64) (podattr.Workload, bool) { return podWorkload, id == podCgroup }

func logsOf(events ...event.Event) plog.Logs {
	ld := otelconv.NewLogBuilder(names{}, fixedClock{}, "test").WithWorkloads(podNames{}).Build(events, t0)
	ld.ResourceLogs().At(0).Resource().Attributes().PutStr("host.name", "client1")
	return ld
}

func slow(cmd uint16, end, lat time.Duration) event.Event {
	e := event.Event{Protocol: proto.SMB, Kind: event.KindSlow, Command: cmd, SessionID: 7, TreeID: 1, Pid: 43, Tgid: 42,
		MessageID: 99, StartNs: uint64(end - lat), EndNs: uint64(end), CgroupID: podCgroup}
	copy(e.Comm[:], "fio")
	return e
}

func fileConfig(testing.TB) *Config {
	cfg := createDefaultConfig()
	cfg.ConfigFile = filepath.Join("testdata", "aod.yaml")
	return cfg
}

func settings() connector.Settings { return connectortest.NewNopSettings(metadata.Type) }

func TestFactory(t *testing.T) {
	f := NewFactory()
	if f.Type() != metadata.Type || f.Type().String() != "aodanomaly" {
		t.Errorf("type %v", f.Type())
	}
	if err := componenttest.CheckConfigStruct(f.CreateDefaultConfig()); err != nil {
		t.Error(err)
	}
	if f.LogsToTracesStability() != component.StabilityLevelAlpha || f.LogsToMetricsStability() != component.StabilityLevelAlpha {
		t.Error("logs to traces and logs to metrics are not both offered")
	}
	if _, err := f.CreateTracesToTraces(context.Background(), settings(), fileConfig(t), consumertest.NewNop()); err == nil {
		t.Error("traces to traces accepted")
	}
}

func TestConfigFromCollectorYAML(t *testing.T) {
	// The inline form, as confmap hands it over from the collector's file.
	conf := confmap.NewFromStringMap(map[string]any{
		"metrics_interval": "30s",
		"aod": map[string]any{
			"watch_interval_sec": 2,
			"anomalies": map[string]any{"smb": map[string]any{
				"error": map[string]any{"tool": "smbiosnoop", "acceptable_count": 5, "track_errors": []any{"EIO"}},
			}},
		},
	})
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	if err := conf.Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.MetricsInterval != 30*time.Second || cfg.ProcRoot != "/proc" {
		t.Errorf("config %+v", cfg)
	}
	aod, err := cfg.aod()
	if err != nil {
		t.Fatal(err)
	}
	p := detector.FromConfig(aod, smb.Table)
	if p.Errors == nil || p.Errors.Window != 2*time.Second || p.Errors.Rules[0].AcceptableCount != 5 || p.Latency != nil {
		t.Errorf("params %+v", p)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"nothing", func(c *Config) { c.ConfigFile = "" }, "set config_file"},
		{"both", func(c *Config) { c.AOD = map[string]any{} }, "not both"},
		{"missing file", func(c *Config) { c.ConfigFile = "testdata/nope.yaml" }, "nope.yaml"},
		{"no anomalies", func(c *Config) { c.ConfigFile = ""; c.AOD = map[string]any{"watch_interval_sec": 1} }, "has no anomalies"},
		{"invalid aod", func(c *Config) {
			c.ConfigFile = ""
			c.AOD = map[string]any{"watch_interval_sec": -1}
		}, "watch_interval_sec"},
		{"interval", func(c *Config) { c.MetricsInterval = 0 }, "metrics_interval must be positive"},
		{"proc root", func(c *Config) { c.ProcRoot = "" }, "proc_root"},
	} {
		cfg := fileConfig(t)
		tc.edit(cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	if err := fileConfig(t).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestLifecycle(t *testing.T) {
	f := NewFactory()
	ctx := context.Background()
	tc, err := f.CreateLogsToTraces(ctx, settings(), fileConfig(t), consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	mc, err := f.CreateLogsToMetrics(ctx, settings(), fileConfig(t), consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []connector.Logs{tc, mc} {
		if c.Capabilities().MutatesData {
			t.Error("connector claims to mutate data")
		}
		if err := c.Start(ctx, componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
		if err := c.ConsumeLogs(ctx, logsOf(slow(smb.Read, time.Second, 30*time.Millisecond))); err != nil {
			t.Error(err)
		}
		if err := c.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	}
	// Shutdown without Start.
	c, err := f.CreateLogsToTraces(ctx, settings(), fileConfig(t), consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Shutdown(ctx); err != nil {
		t.Error(err)
	}
	bad := fileConfig(t)
	bad.ConfigFile = "testdata/nope.yaml"
	if _, err := f.CreateLogsToTraces(ctx, settings(), bad, consumertest.NewNop()); err == nil {
		t.Error("created from a missing aod configuration")
	}
}

func spanAttrs(s ptrace.Span) map[string]any { return s.Attributes().AsRaw() }

func TestEventsToAnomalySpans(t *testing.T) {
	ctx := context.Background()
	sink := new(consumertest.TracesSink)
	c, err := NewFactory().CreateLogsToTraces(ctx, settings(), fileConfig(t), sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Shutdown(ctx) }()

	// Two slow writes under their 50 ms threshold, then three over: the third fires.
	ms := time.Millisecond
	batches := []plog.Logs{
		logsOf(slow(smb.Write, time.Second, 40*ms), slow(smb.Write, time.Second+ms, 45*ms)),
		logsOf(slow(smb.Write, 1100*ms, 50*ms), slow(smb.Read, 1200*ms, 20*ms)),
		logsOf(slow(smb.Write, 1300*ms, 70*ms)),
	}
	// Records that are not aod events pass unnoticed.
	batches[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty().Body().SetStr("unrelated")
	for i, ld := range batches {
		if err := c.ConsumeLogs(ctx, ld); err != nil {
			t.Fatal(err)
		}
		if n := sink.SpanCount(); (i < 2 && n != 0) || (i == 2 && n != 1) {
			t.Fatalf("after batch %d: %d spans", i, n)
		}
	}
	td := sink.AllTraces()[0]
	rs := td.ResourceSpans().At(0)
	if v, _ := rs.Resource().Attributes().Get("host.name"); v.Str() != "client1" {
		t.Errorf("resource %v: want the records' resource", rs.Resource().Attributes().AsRaw())
	}
	span := rs.ScopeSpans().At(0).Spans().At(0)
	attrs := spanAttrs(span)
	want := map[string]any{
		anomalypdata.AttrProtocol:        "smb",
		anomalypdata.AttrType:            "latency",
		anomalypdata.AttrRule:            "count",
		anomalypdata.AttrCount:           int64(3),
		anomalypdata.AttrAcceptableCount: int64(3),
		anomalypdata.AttrThreshold:       0.02,
		anomalypdata.AttrWindow:          1.0,
		anomalypdata.AttrMaxLatency:      0.07,
		anomalypdata.AttrEventCount:      int64(3),
	}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("%s = %v, want %v", k, attrs[k], v)
		}
	}
	if got := attrs[anomalypdata.AttrTopShares]; !equalSlice(got, `\\srv\data=3`) {
		t.Errorf("top shares %v: want the share the receiver named", got)
	}
	if got := attrs[anomalypdata.AttrTopCommands]; !equalSlice(got, "SMB2_WRITE=2", "SMB2_READ=1") {
		t.Errorf("top commands %v", got)
	}
	if got := attrs[anomalypdata.AttrTopProcesses]; !equalSlice(got, "fio[42]=3") {
		t.Errorf("top processes %v", got)
	}
	// The pod the receiver named on the records, on the span and its events.
	if got := attrs[anomalypdata.AttrTopWorkloads]; !equalSlice(got, "shop/web/app=3") {
		t.Errorf("top workloads %v", got)
	}
	if a, _, err := anomalypdata.FromSpan(span); err != nil || a.Workloads[podCgroup] != podWorkload || a.Events[0].CgroupID != podCgroup {
		t.Errorf("the span's events name %+v (cgroup %#x), %v; want %+v", a.Workloads, a.Events[0].CgroupID, err, podWorkload)
	}
	if span.Name() != "smb.anomaly" || span.TraceID().IsEmpty() || span.SpanID().IsEmpty() ||
		span.StartTimestamp().AsTime() != t0.Add(1100*ms) {
		t.Errorf("span %s trace %v span %v start %v", span.Name(), span.TraceID(), span.SpanID(), span.StartTimestamp().AsTime())
	}

	// A severe failure fires its error rule at once.
	failed := slow(smb.Create, 1400*ms, ms)
	failed.Kind, failed.Status, failed.Rc = event.KindError, 0xC00000B5, -110
	if err := c.ConsumeLogs(ctx, logsOf(failed)); err != nil {
		t.Fatal(err)
	}
	if sink.SpanCount() != 2 {
		t.Fatalf("%d spans after a STATUS_IO_TIMEOUT", sink.SpanCount())
	}
	last := sink.AllTraces()[1].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	if a := spanAttrs(last); a[anomalypdata.AttrRule] != "severe" || !equalSlice(a[anomalypdata.AttrTopStatuses], "STATUS_IO_TIMEOUT=1") {
		t.Errorf("error span %v", a)
	}
}

func TestEventsToAnomalyCounter(t *testing.T) {
	ctx := context.Background()
	sink := new(consumertest.MetricsSink)
	c, err := NewFactory().CreateLogsToMetrics(ctx, settings(), fileConfig(t), sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ConsumeLogs(ctx, logsOf(slow(smb.Read, 3*time.Second, 2*time.Second))); err != nil {
		t.Fatal(err)
	}
	all := sink.AllMetrics()
	if len(all) != 1 {
		t.Fatalf("%d metric batches, want 1", len(all))
	}
	got := counts(all[0])
	want := map[string]int64{"latency/count": 0, "latency/ceiling": 1, "error/severe": 0}
	if len(got) != len(want) {
		t.Errorf("series %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
}

func counts(md pmetric.Metrics) map[string]int64 {
	out := map[string]int64{}
	m := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)
	for _, dp := range m.Sum().DataPoints().All() {
		a := dp.Attributes().AsRaw()
		out[a[anomalypdata.AttrType].(string)+"/"+a[anomalypdata.AttrRule].(string)] = dp.IntValue()
	}
	return out
}

func equalSlice(v any, want ...string) bool {
	s, ok := v.([]any)
	if !ok || len(s) != len(want) {
		return false
	}
	for i := range s {
		if s[i] != want[i] {
			return false
		}
	}
	return true
}

// The connection detector polls proc_root on its own and reports a dropped connection
// without any record arriving.
func TestPolledConnectionLoss(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	install := func(from string) {
		for _, f := range []string{"tcp", "tcp6"} {
			data, err := os.ReadFile(fixtures.Path(from, "net", f))
			if err != nil {
				t.Fatal(err)
			}
			tmp := filepath.Join(root, "net", f+".tmp")
			if err := os.WriteFile(tmp, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, filepath.Join(root, "net", f)); err != nil { // polls never see half a table
				t.Fatal(err)
			}
		}
	}
	install("proc/smb-conns")
	cfg := createDefaultConfig()
	cfg.ProcRoot = root
	cfg.AOD = map[string]any{
		"watch_interval_sec": 0.02,
		"anomalies":          map[string]any{"smb": map[string]any{"sockconn": map[string]any{"tool": "ss"}}},
		"detection":          map[string]any{"cooldown_sec": 0},
	}
	ctx := context.Background()
	sink := new(consumertest.TracesSink)
	c, err := NewFactory().CreateLogsToTraces(ctx, settings(), cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Shutdown(ctx) }()
	// Alternate the tables until a poll has seen a change: the first poll only takes a
	// baseline, so which swap it notices depends on timing, not on correctness.
	deadline := time.Now().Add(10 * time.Second)
	for swap := 0; sink.SpanCount() == 0; swap++ {
		if time.Now().After(deadline) {
			t.Fatal("no connection anomaly within 10 s of changing tables")
		}
		install([]string{"proc/smb-reconnect", "proc/smb-conns"}[swap%2])
		time.Sleep(50 * time.Millisecond) // polling pace, not synchronisation
	}
	span := sink.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	a := spanAttrs(span)
	if a[anomalypdata.AttrType] != "sockconn" || a[anomalypdata.AttrRule] != "dropped" || !equalSlice(a[anomalypdata.AttrTopServers], "127.0.0.1:445=1") {
		t.Errorf("span attributes %v", a)
	}
}

// The counter is re-sent periodically, with every configured rule from zero, so an
// exporter that expires idle series keeps it.
func TestCounterResent(t *testing.T) {
	cfg := fileConfig(t)
	cfg.MetricsInterval = 10 * time.Millisecond
	ctx := context.Background()
	sink := new(consumertest.MetricsSink)
	c, err := NewFactory().CreateLogsToMetrics(ctx, settings(), cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Shutdown(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(sink.AllMetrics()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("counter not re-sent within 10 s")
		}
		time.Sleep(5 * time.Millisecond) // polling pace
	}
	got := counts(sink.AllMetrics()[0])
	if len(got) != 3 || got["latency/count"] != 0 || got["latency/ceiling"] != 0 || got["error/severe"] != 0 {
		t.Errorf("series %v, want the three configured rules at 0", got)
	}
}
