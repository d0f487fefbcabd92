package aodbundleexporter

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/linuxdiag/aod/exporter/aodbundleexporter/internal/metadata"
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

func TestLifecycleBundlesAndChildSpans(t *testing.T) {
	out := t.TempDir()
	cfg := createDefaultConfig()
	cfg.OutputDir = out
	cfg.Actions = map[string]map[string][]string{"smb": {"error": {"mounts"}}}
	cfg.ActionTimeout = 300 * time.Millisecond

	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	set := exportertest.NewNopSettings(metadata.Type)
	set.TracerProvider, set.MeterProvider = tp, mp

	// A hanging action shows a timeout as an error span; it is added the way tests
	// and the agent add actions, through the bundler's Extra table.
	e, err := newBundleExporter(cfg, set)
	if err != nil {
		t.Fatal(err)
	}
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
	td := anomalypdata.Traces(pcommon.NewResource(), []anomaly.Anomaly{a})
	// A span that is not an anomaly rides along and is ignored.
	plain := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().AppendEmpty()
	plain.SetName("unrelated")
	if err := e.consume(ctx, td); err != nil {
		t.Fatal(err)
	}
	var bundle sdktrace.ReadOnlySpan
	deadline := time.Now().Add(30 * time.Second)
	for bundle == nil {
		for _, s := range rec.Ended() {
			if s.Name() == "aod.bundle" {
				bundle = s
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no bundle span")
		}
		time.Sleep(10 * time.Millisecond)
	}
	attrs := attrMap(bundle.Attributes())
	path := attrs[bundler.AttrBundlePath].AsString()
	if _, ok := archive.ParseBundleName(filepath.Base(path)); !ok || !strings.HasPrefix(path, out) {
		t.Fatalf("bundle path %q", path)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != attrs[bundler.AttrBundleBytes].AsInt64() {
		t.Fatalf("bundle file: %v, %v", st, err)
	}
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		byName[s.Name()] = s
		if s.Parent().TraceID() != a.TraceID || s.Parent().SpanID() != a.SpanID || s.SpanContext().TraceID() != a.TraceID {
			t.Errorf("%s: parent %v, want the anomaly %x/%x", s.Name(), s.Parent(), a.TraceID, a.SpanID)
		}
	}
	for _, name := range append([]string{"mounts", "hang"}, actions.Always[proto.SMB]...) {
		s, ok := byName["aod.action "+name]
		if !ok {
			t.Errorf("no span for action %s", name)
			continue
		}
		sa := attrMap(s.Attributes())
		if sa[bundler.AttrBundlePath].AsString() != path || sa[bundler.AttrActionName].AsString() != name {
			t.Errorf("%s: attributes %v", name, sa)
		}
	}
	if s := byName["aod.action hang"]; s.Status().Code != codes.Error || attrMap(s.Attributes())[bundler.AttrActionStatus].AsString() != "timeout" {
		t.Errorf("hang span: %+v %v", s.Status(), s.Attributes())
	}
	if s := byName["aod.action mounts"]; s.Status().Code == codes.Error || !s.EndTime().After(s.StartTime()) {
		t.Errorf("mounts span: %+v", s.Status())
	}
	if _, ok := byName["aod.action unrelated"]; ok || len(rec.Ended()) != 2+len(actions.Always[proto.SMB])+1 {
		t.Errorf("%d spans for one anomaly", len(rec.Ended()))
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

func TestCreateStartShutdown(t *testing.T) {
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.OutputDir = t.TempDir()
	exp, err := f.CreateTraces(context.Background(), exportertest.NewNopSettings(metadata.Type), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	a := sample()
	if err := exp.ConsumeTraces(context.Background(), anomalypdata.Traces(pcommon.NewResource(), []anomaly.Anomaly{a})); err != nil {
		t.Fatal(err)
	}
	// Shutdown waits for the bundle in progress, which it cancels.
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(cfg.OutputDir, archive.BatchesDir))
	if len(entries) != 1 {
		t.Fatalf("batches after shutdown: %v", entries)
	}
	if _, ok := archive.ParseBundleName(entries[0].Name()); !ok {
		t.Fatalf("not a complete bundle: %s", entries[0].Name())
	}
	// Shutdown without Start is allowed.
	exp2, err := f.CreateTraces(context.Background(), exportertest.NewNopSettings(metadata.Type), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func attrMap(kvs []attribute.KeyValue) map[string]attribute.Value {
	m := map[string]attribute.Value{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value
	}
	return m
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
