// Package telemetry sends the standalone agent's metrics, logs and traces to their
// destinations. It instantiates the OpenTelemetry Collector's own exporters (otlp,
// otlphttp, prometheus) directly from their factories, so aod writes no protocol code
// and behaves exactly like a collector configured the same way.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusexporter"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
)

// Protocols accepted for OTLP.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http"
)

// OTLP configures OTLP export. An empty Endpoint disables it.
type OTLP struct {
	Endpoint           string
	Protocol           string // ProtocolGRPC or ProtocolHTTP
	Headers            map[string]string
	Insecure           bool // plaintext (gRPC); for HTTP the endpoint's scheme decides
	InsecureSkipVerify bool
	ServerName         string // overrides the name checked in the server certificate
	CAFile             string
	CertFile           string
	KeyFile            string
	Compression        string // "gzip", "zstd", "snappy" or "none"; empty keeps the exporter's default
	Timeout            time.Duration
}

// Options selects the destinations.
type Options struct {
	OTLP OTLP
	// PrometheusListen is the host:port serving /metrics; empty disables it.
	PrometheusListen string
	// Resource attributes stamped on every resource that lacks them (service.name, ...).
	Resource map[string]string
	// Logger receives the exporters' own logs.
	Logger *slog.Logger
	// BuildVersion is reported to the exporters as the build version (user agent).
	BuildVersion string
}

// Sinks fans telemetry out to the configured exporters. Metrics go to OTLP as given;
// the Prometheus exporter receives its own form of the metrics (classic explicit
// buckets), because a classic text scrape cannot carry exponential histograms.
type Sinks struct {
	resource   []attr // sorted by key
	otlpM      exporter.Metrics
	otlpL      exporter.Logs
	otlpT      exporter.Traces
	prom       exporter.Metrics
	components []component.Component
}

// New creates the exporters. Nothing connects or listens until Start.
func New(ctx context.Context, o Options) (*Sinks, error) {
	logger := zap.NewNop()
	if o.Logger != nil {
		logger = zapLogger(o.Logger)
	}
	s := &Sinks{}
	for _, k := range slices.Sorted(maps.Keys(o.Resource)) {
		s.resource = append(s.resource, attr{k, o.Resource[k]})
	}
	set := func(f exporter.Factory) exporter.Settings {
		st := exporter.Settings{ID: component.NewID(f.Type())}
		st.Logger = logger.With(zap.String("exporter", f.Type().String()))
		st.TracerProvider = nopTracerProvider()
		st.MeterProvider = nopMeterProvider()
		st.Resource = pcommon.NewResource()
		st.BuildInfo = component.BuildInfo{Command: "aod", Description: "aod SMB diagnostics agent", Version: o.BuildVersion}
		return st
	}
	if o.OTLP.Endpoint != "" {
		f, raw, err := otlpConfig(o.OTLP)
		if err != nil {
			return nil, err
		}
		cfg, err := decode(f, raw)
		if err != nil {
			return nil, fmt.Errorf("otlp exporter: %w", err)
		}
		if s.otlpM, err = f.CreateMetrics(ctx, set(f), cfg); err != nil {
			return nil, fmt.Errorf("otlp metrics exporter: %w", err)
		}
		logsCfg, err := decode(f, withLogBatching(raw))
		if err != nil {
			return nil, fmt.Errorf("otlp exporter: %w", err)
		}
		if s.otlpL, err = f.CreateLogs(ctx, set(f), logsCfg); err != nil {
			return nil, fmt.Errorf("otlp logs exporter: %w", err)
		}
		if s.otlpT, err = f.CreateTraces(ctx, set(f), cfg); err != nil {
			return nil, fmt.Errorf("otlp traces exporter: %w", err)
		}
		s.components = append(s.components, s.otlpM, s.otlpL, s.otlpT)
	}
	if o.PrometheusListen != "" {
		f := prometheusexporter.NewFactory()
		cfg, err := decode(f, map[string]any{
			"endpoint":           o.PrometheusListen,
			"send_timestamps":    false,
			"without_scope_info": true,
			// Counters and histograms are cumulative: keep a series while the agent runs.
			"metric_expiration":                "8760h",
			"resource_to_telemetry_conversion": map[string]any{"enabled": false},
		})
		if err != nil {
			return nil, fmt.Errorf("prometheus exporter: %w", err)
		}
		if s.prom, err = f.CreateMetrics(ctx, set(f), cfg); err != nil {
			return nil, fmt.Errorf("prometheus exporter: %w", err)
		}
		s.components = append(s.components, s.prom)
	}
	return s, nil
}

func otlpConfig(o OTLP) (exporter.Factory, map[string]any, error) {
	tls := map[string]any{
		"insecure":             o.Insecure,
		"insecure_skip_verify": o.InsecureSkipVerify,
	}
	if o.ServerName != "" {
		tls["server_name_override"] = o.ServerName
	}
	if o.CAFile != "" {
		tls["ca_file"] = o.CAFile
	}
	if o.CertFile != "" {
		tls["cert_file"] = o.CertFile
	}
	if o.KeyFile != "" {
		tls["key_file"] = o.KeyFile
	}
	raw := map[string]any{"endpoint": o.Endpoint, "tls": tls}
	if len(o.Headers) > 0 {
		h := map[string]any{}
		for k, v := range o.Headers {
			h[k] = v
		}
		raw["headers"] = h
	}
	if o.Compression != "" {
		c := o.Compression
		if c == "none" {
			c = ""
		}
		raw["compression"] = c
	}
	if o.Timeout > 0 {
		raw["timeout"] = o.Timeout.String()
	}
	switch o.Protocol {
	case ProtocolGRPC, "":
		return otlpexporter.NewFactory(), raw, nil
	case ProtocolHTTP:
		delete(tls, "insecure") // plaintext or not follows the URL scheme for HTTP
		return otlphttpexporter.NewFactory(), raw, nil
	}
	return nil, nil, fmt.Errorf("otlp protocol %q: want %q or %q", o.Protocol, ProtocolGRPC, ProtocolHTTP)
}

// logBatchTimeout is how long the OTLP logs exporter gathers records into one export
// request: the receiver hands over a batch per ring drain (every 200 ms at most), and
// one request per drain would cost an HTTP or gRPC round trip, with the resource and
// scope, for a handful of records. Each request also wakes several of the agent's
// threads (the timer, the connection's writer and reader), which at a steady trickle
// of records costs more than the records do (make bench, agent_cpu_percent_10k):
// hence 5 s, as agents that ship logs commonly wait, not a collector's 200 ms.
// Records reach the endpoint at most this much after their drain.
const logBatchTimeout = 5 * time.Second

// logBatchRecords is the number of records that sends a request before the timeout.
// A request holds at most that many plus one drain's (ringreader.DefaultBatchSize,
// 512): 4,607 records are about 2.3 MB of OTLP, little more than half a gRPC
// receiver's default 4 MiB message limit. (The exporter's max_size would bound it
// exactly, but costs the idle agent 8 MiB of memory: make bench, rss_mb_idle.)
const logBatchRecords = 4096

// withLogBatching returns raw with the exporter's own batching on (its sending queue
// merges what it is given until logBatchTimeout or logBatchRecords records), as a
// collector configured with sending_queue::batch does.
func withLogBatching(raw map[string]any) map[string]any {
	out := maps.Clone(raw)
	out["sending_queue"] = map[string]any{
		"batch": map[string]any{"flush_timeout": logBatchTimeout.String(), "sizer": "items", "min_size": logBatchRecords},
	}
	return out
}

// decode fills the factory's default config from raw, as the collector does with YAML,
// and validates it.
func decode(f exporter.Factory, raw map[string]any) (component.Config, error) {
	cfg := f.CreateDefaultConfig()
	if err := confmap.NewFromStringMap(raw).Unmarshal(cfg); err != nil {
		return nil, err
	}
	if v, ok := cfg.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// Start starts every exporter (connects OTLP lazily, binds the Prometheus listener).
func (s *Sinks) Start(ctx context.Context) error {
	for i, c := range s.components {
		if err := c.Start(ctx, host{}); err != nil {
			_ = s.shutdown(ctx, s.components[:i])
			return err
		}
	}
	return nil
}

// Shutdown flushes pending data and stops every exporter, waiting at most until ctx ends.
func (s *Sinks) Shutdown(ctx context.Context) error { return s.shutdown(ctx, s.components) }

func (s *Sinks) shutdown(ctx context.Context, cs []component.Component) error {
	var errs []error
	for _, c := range slices.Backward(cs) {
		errs = append(errs, c.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// ExportMetrics sends otlp to the OTLP exporter and prom to the Prometheus exporter;
// either may be empty.
func (s *Sinks) ExportMetrics(ctx context.Context, otlp, prom pmetric.Metrics) error {
	var errs []error
	if s.otlpM != nil && otlp.ResourceMetrics().Len() > 0 {
		s.stampMetrics(otlp)
		errs = append(errs, s.otlpM.ConsumeMetrics(ctx, otlp))
	}
	if s.prom != nil && prom.ResourceMetrics().Len() > 0 {
		s.stampMetrics(prom)
		errs = append(errs, s.prom.ConsumeMetrics(ctx, prom))
	}
	return errors.Join(errs...)
}

// ExportLogs sends event and anomaly records over OTLP.
func (s *Sinks) ExportLogs(ctx context.Context, ld plog.Logs) error {
	if s.otlpL == nil || ld.ResourceLogs().Len() == 0 {
		return nil
	}
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		stamp(ld.ResourceLogs().At(i).Resource(), s.resource)
	}
	return s.otlpL.ConsumeLogs(ctx, ld)
}

// ExportTraces sends anomaly spans over OTLP.
func (s *Sinks) ExportTraces(ctx context.Context, td ptrace.Traces) error {
	if s.otlpT == nil || td.ResourceSpans().Len() == 0 {
		return nil
	}
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		stamp(td.ResourceSpans().At(i).Resource(), s.resource)
	}
	return s.otlpT.ConsumeTraces(ctx, td)
}

func (s *Sinks) stampMetrics(md pmetric.Metrics) {
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		stamp(md.ResourceMetrics().At(i).Resource(), s.resource)
	}
}

// attr is one resource attribute.
type attr struct{ key, value string }

// stamp adds the agent's resource attributes the producer did not set itself. The
// attributes are sorted once, in New: stamp runs on every export.
func stamp(r pcommon.Resource, attrs []attr) {
	for _, a := range attrs {
		if _, ok := r.Attributes().Get(a.key); !ok {
			r.Attributes().PutStr(a.key, a.value)
		}
	}
}

// host is the minimal component.Host: the agent runs no extensions.
type host struct{}

func (host) GetExtensions() map[component.ID]component.Component { return nil }

// ParseHeaders parses the OTEL_EXPORTER_OTLP_HEADERS form "k1=v1,k2=v2".
func ParseHeaders(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("header %q: want key=value", kv)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, nil
}
