package agent

import (
	"log/slog"
	"testing"

	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/telemetry"
)

func TestSinkOptionsFromEnvironment(t *testing.T) {
	env := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":    "http://collector:4317",
		"OTEL_EXPORTER_OTLP_HEADERS":     "x-tenant=t1, authorization=Bearer abc",
		"OTEL_EXPORTER_OTLP_CERTIFICATE": "/etc/ca.pem",
	}
	getenv := func(k string) string { return env[k] }

	// The file leaves OTLP off: the variables turn it on, plaintext gRPC for http://.
	o := sinkOptionsEnv(config.Defaults(), nil, slog.New(slog.DiscardHandler), getenv).OTLP
	if o.Endpoint != "collector:4317" || !o.Insecure || o.Protocol != telemetry.ProtocolGRPC {
		t.Errorf("endpoint %q insecure %v protocol %q", o.Endpoint, o.Insecure, o.Protocol)
	}
	if o.Headers["x-tenant"] != "t1" || o.Headers["authorization"] != "Bearer abc" || o.CAFile != "/etc/ca.pem" {
		t.Errorf("headers %v ca %q", o.Headers, o.CAFile)
	}

	env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"
	env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "https://collector:4318"
	if o := sinkOptionsEnv(config.Defaults(), nil, slog.New(slog.DiscardHandler), getenv).OTLP; o.Endpoint != "https://collector:4318" || o.Protocol != telemetry.ProtocolHTTP {
		t.Errorf("http: endpoint %q protocol %q", o.Endpoint, o.Protocol)
	}

	// What the file says wins over the variables.
	cfg := config.Defaults()
	cfg.Telemetry.OTLP.Endpoint = "file:4317"
	cfg.Telemetry.OTLP.Headers = map[string]string{"x-tenant": "file"}
	o = sinkOptionsEnv(cfg, nil, slog.New(slog.DiscardHandler), getenv).OTLP
	if o.Endpoint != "file:4317" || o.Headers["x-tenant"] != "file" {
		t.Errorf("file settings overridden: %q %v", o.Endpoint, o.Headers)
	}
}
