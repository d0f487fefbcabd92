package aodbundleconnector

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/linuxdiag/aod/exporter/aodbundleconnector/internal/metadata"
	"github.com/linuxdiag/aod/internal/actions"
	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/anomalypdata"
	"github.com/linuxdiag/aod/internal/archive"
	"github.com/linuxdiag/aod/internal/bundler"
	"github.com/linuxdiag/aod/internal/proto"
)

func sample() anomaly.Anomaly {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return anomaly.Anomaly{TraceID: [16]byte{0xa, 1}, SpanID: [8]byte{0xb, 2}, Protocol: "smb", Type: anomaly.TypeError,
		Rule: "timeouts", Reason: "5 requests failed with STATUS_IO_TIMEOUT in 1s",
		FirstEvent: now.Add(-time.Second), DetectedAt: now, Window: time.Second, Count: 5, Limit: 5,
		Threshold: 20 * time.Millisecond, MaxLatency: 1500 * time.Millisecond, Suppressed: 2,
		TopCommands: []anomaly.Tally{{Value: "SMB2_READ", Count: 4}, {Value: "SMB2_WRITE", Count: 1}},
		TopShares:   []anomaly.Tally{{Value: `\\srv\a=b`, Count: 5}},
		TopStatuses: []anomaly.Tally{{Value: "STATUS_IO_TIMEOUT", Count: 5}}}
}

func TestFactoryAndDefaultConfig(t *testing.T) {
	f := NewFactory()
	if f.Type().String() != "aodbundle" {
		t.Fatalf("type %q", f.Type())
	}
	cfg := f.CreateDefaultConfig().(*Config)
	if err := componenttest.CheckConfigStruct(cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
}

func TestConfigUnmarshal(t *testing.T) {
	cm := confmap.NewFromStringMap(map[string]any{
		"output_dir": "/srv/aod",
		"actions": map[string]any{
			"smb": map[string]any{"latency": []any{"dmesg", "tcpdump"}},
		},
		"captures":       []any{map[string]any{"protocol": "smb", "tool": "tcpdump", "args": []any{"-C", "2", "-W", "10"}}},
		"action_timeout": "10s",
		"zstd_level":     9,
		"cleanup":        map[string]any{"interval": "1m", "max_age_days": 1.5, "max_total_size_mb": 0.5},
		"min_free_mb":    100,
	})
	cfg := createDefaultConfig()
	if err := cm.Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	o := cfg.options(nil)
	if o.OutputDir != "/srv/aod" || o.ActionTimeout != 10*time.Second || o.ZstdLevel != 9 ||
		o.MaxTotalBytes != 512<<10 || o.MaxAge != 36*time.Hour || o.CleanupInterval != time.Minute ||
		o.MinFreeBytes != 100<<20 || len(o.Captures) != 1 || o.Captures[0].Tool != "tcpdump" {
		t.Fatalf("options %+v", o)
	}
	if got := o.Actions[struct{ Protocol, Type string }{"smb", "latency"}]; len(got) != 2 {
		t.Fatalf("actions %v", o.Actions)
	}
}

func TestConfigValidateRejects(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"unknown action": func(c *Config) { c.Actions["smb"]["latency"] = []string{"dmseg"} },
		"capture args": func(c *Config) {
			c.Captures = []CaptureConfig{{Protocol: "smb", Tool: "tcpdump", Args: []string{"-w", "x"}}}
		},
		"zstd level":       func(c *Config) { c.ZstdLevel = 23 },
		"no output dir":    func(c *Config) { c.OutputDir = "" },
		"negative size":    func(c *Config) { c.Cleanup.MaxTotalSizeMB = -1 },
		"negative timeout": func(c *Config) { c.ActionTimeout = -time.Second },
	} {
		cfg := createDefaultConfig()
		mutate(cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// records is a pipeline's consumer that hands each batch to the test.
type records struct {
	traces chan ptrace.Traces
	logs   chan plog.Logs
}

func newRecords() *records {
	return &records{traces: make(chan ptrace.Traces, 64), logs: make(chan plog.Logs, 64)}
}

func (r *records) tracesConsumer(t *testing.T) consumer.Traces {
	c, err := consumer.NewTraces(func(_ context.Context, td ptrace.Traces) error { r.traces <- td; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (r *records) logsConsumer(t *testing.T) consumer.Logs {
	c, err := consumer.NewLogs(func(_ context.Context, ld plog.Logs) error { r.logs <- ld; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// nextSpans waits for the next batch of spans (a minute at most: a hang, not a
// timing assertion).
func (r *records) nextSpans(t *testing.T) []ptrace.Span {
	t.Helper()
	select {
	case td := <-r.traces:
		var spans []ptrace.Span
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					spans = append(spans, s)
				}
			}
		}
		return spans
	case <-time.After(time.Minute):
		t.Fatal("no spans within a minute")
		return nil
	}
}

func (r *records) nextLog(t *testing.T) plog.LogRecord {
	t.Helper()
	select {
	case ld := <-r.logs:
		return ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	case <-time.After(time.Minute):
		t.Fatal("no log record within a minute")
		return plog.LogRecord{}
	}
}

// TestBundleRecordsGoDownThePipelines consumes an anomaly span and checks what
// the connector sends on: the bundle's span and one span per action under the
// anomaly's span, and the bundle's log record naming it, all with the bundle's path.
func TestBundleRecordsGoDownThePipelines(t *testing.T) {
	out := t.TempDir()
	cfg := createDefaultConfig()
	cfg.OutputDir = out
	cfg.Actions = map[string]map[string][]string{"smb": {"error": {"mounts"}}}
	cfg.ActionTimeout = 300 * time.Millisecond

	reader := sdkmetric.NewManualReader()
	set := connectortest.NewNopSettings(metadata.Type)
	set.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))

	// A hanging action shows a timeout as an error span; it is added the way tests
	// and the agent add actions, through the bundler's Extra table.
	e, err := newBundleConnector(cfg, set)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecords()
	e.traces, e.logs = rec.tracesConsumer(t), rec.logsConsumer(t)
	o := cfg.options(e.log)
	o.Actions[bundler.Key{Protocol: "smb", Type: "error"}] = []string{"mounts", "hang"}
	o.Extra = actions.Table{"hang": actions.Command("hang", "hang.txt", "sleep", "100")}
	if e.b, err = bundler.New(o); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	a := sample()
	res := pcommon.NewResource()
	res.Attributes().PutStr("host.name", "web-1")
	td := anomalypdata.Traces(res, []anomaly.Anomaly{a})
	// A span that is not an anomaly rides along and is ignored.
	plain := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().AppendEmpty()
	plain.SetName("unrelated")
	if err := e.consume(ctx, td); err != nil {
		t.Fatal(err)
	}
	spans := rec.nextSpans(t)
	byName := map[string]ptrace.Span{}
	for _, s := range spans {
		byName[s.Name()] = s
	}
	bundle, ok := byName[bundler.SpanBundle]
	if !ok {
		t.Fatalf("no bundle span among %d", len(spans))
	}
	path := str(bundle.Attributes(), bundler.AttrBundlePath)
	if _, ok := archive.ParseBundleName(filepath.Base(path)); !ok || !strings.HasPrefix(path, out) {
		t.Fatalf("bundle path %q", path)
	}
	size, _ := bundle.Attributes().Get(bundler.AttrBundleBytes)
	if st, err := os.Stat(path); err != nil || st.Size() != size.Int() {
		t.Fatalf("bundle file: %v, %v", st, err)
	}
	for _, s := range spans {
		if s.TraceID() != a.TraceID || s.ParentSpanID() != a.SpanID {
			t.Errorf("%s: trace %s parent %s, want the anomaly %x/%x", s.Name(), s.TraceID(), s.ParentSpanID(), a.TraceID, a.SpanID)
		}
	}
	for _, name := range append([]string{"mounts", "hang"}, actions.Always[proto.SMB]...) {
		s, ok := byName[bundler.ActionSpanName(name)]
		if !ok {
			t.Errorf("no span for action %s", name)
			continue
		}
		if str(s.Attributes(), bundler.AttrBundlePath) != path || str(s.Attributes(), bundler.AttrActionName) != name {
			t.Errorf("%s: attributes %v", name, s.Attributes().AsRaw())
		}
	}
	if s := byName[bundler.ActionSpanName("hang")]; s.Status().Code() != ptrace.StatusCodeError || str(s.Attributes(), bundler.AttrActionStatus) != "timeout" {
		t.Errorf("hang span: %v %v", s.Status().Code(), s.Attributes().AsRaw())
	}
	if len(spans) != 2+len(actions.Always[proto.SMB])+1 {
		t.Errorf("%d spans for one anomaly", len(spans))
	}
	lr := rec.nextLog(t)
	if lr.EventName() != bundler.EventBundle || lr.TraceID() != a.TraceID || lr.SpanID() != a.SpanID ||
		str(lr.Attributes(), bundler.AttrBundlePath) != path || str(lr.Attributes(), anomalypdata.AttrRule) != a.Rule {
		t.Errorf("bundle log record %s %s/%s %v", lr.EventName(), lr.TraceID(), lr.SpanID(), lr.Attributes().AsRaw())
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	if v := counter(rm, bundler.MetricBundles, bundler.AttrOutcome, bundler.OutcomeWritten); v != 1 {
		t.Errorf("aod.bundles{outcome=written} = %d", v)
	}
	if err := e.shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestBothSignalsShareOneBundler creates the connector for both pairs of signals,
// as a collector does, and feeds the anomaly to each, as the collector's fan-out
// does: one bundle, and its records reach both pipelines.
func TestBothSignalsShareOneBundler(t *testing.T) {
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.OutputDir = t.TempDir()
	cfg.Actions = map[string]map[string][]string{"smb": {"error": {"mounts"}}}
	ctx := context.Background()
	rec := newRecords()
	tt, err := f.CreateTracesToTraces(ctx, connectortest.NewNopSettings(metadata.Type), cfg, rec.tracesConsumer(t))
	if err != nil {
		t.Fatal(err)
	}
	tl, err := f.CreateTracesToLogs(ctx, connectortest.NewNopSettings(metadata.Type), cfg, rec.logsConsumer(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []connector.Traces{tt, tl} {
		if err := c.Start(ctx, componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
	}
	a := sample()
	for _, c := range []connector.Traces{tt, tl} {
		if err := c.ConsumeTraces(ctx, anomalypdata.Traces(pcommon.NewResource(), []anomaly.Anomaly{a})); err != nil {
			t.Fatal(err)
		}
	}
	spans := rec.nextSpans(t)
	lr := rec.nextLog(t)
	for _, c := range []connector.Traces{tt, tl} {
		if err := c.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(cfg.OutputDir, archive.BatchesDir))
	if len(entries) != 1 {
		t.Fatalf("batches: %v; want one bundle", entries)
	}
	if spans[0].Name() != bundler.SpanBundle || lr.EventName() != bundler.EventBundle ||
		filepath.Base(str(lr.Attributes(), bundler.AttrBundlePath)) != entries[0].Name() {
		t.Errorf("records %s, %s %v", spans[0].Name(), lr.EventName(), lr.Attributes().AsRaw())
	}
	select {
	case td := <-rec.traces:
		t.Errorf("a second bundle's spans: %d", td.SpanCount())
	case ld := <-rec.logs:
		t.Errorf("a second bundle's records: %d", ld.LogRecordCount())
	default:
	}
	// A new configuration after the shutdown gets a new connector; shutdown
	// without Start is allowed.
	again, err := f.CreateTracesToTraces(ctx, connectortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func str(m pcommon.Map, k string) string {
	v, _ := m.Get(k)
	return v.AsString()
}

func counter(rm metricdata.ResourceMetrics, name, key, value string) int64 {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				if v, ok := dp.Attributes.Value(attribute.Key(key)); ok && v.AsString() == value {
					return dp.Value
				}
			}
		}
	}
	return -1
}
