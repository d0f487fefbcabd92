package agent

import (
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/telemetry"
	"github.com/linuxdiag/aod/internal/version"
)

// sinkOptions maps the telemetry section onto the exporters. The standard
// OTEL_EXPORTER_OTLP_* variables fill what the file leaves unset, so an agent deployed
// beside a collector can be pointed at it without editing its file.
func sinkOptions(cfg *config.Config, resource map[string]string, log *slog.Logger) telemetry.Options {
	return sinkOptionsEnv(cfg, resource, log, os.Getenv)
}

func sinkOptionsEnv(cfg *config.Config, resource map[string]string, log *slog.Logger, getenv func(string) string) telemetry.Options {
	c := cfg.Telemetry.OTLP
	o := telemetry.OTLP{
		Endpoint:           c.Endpoint,
		Protocol:           c.Protocol,
		Headers:            c.Headers,
		Insecure:           c.TLS.Insecure,
		InsecureSkipVerify: c.TLS.InsecureSkipVerify,
		ServerName:         c.TLS.ServerName,
		CAFile:             c.TLS.CAFile,
		CertFile:           c.TLS.CertFile,
		KeyFile:            c.TLS.KeyFile,
		Compression:        c.Compression,
		Timeout:            c.Timeout,
	}
	if o.Endpoint == "" {
		if ep := getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); ep != "" {
			o.Endpoint = ep
			switch p := getenv("OTEL_EXPORTER_OTLP_PROTOCOL"); p {
			case "http/protobuf", "http/json":
				o.Protocol = telemetry.ProtocolHTTP
			case "grpc":
				o.Protocol = telemetry.ProtocolGRPC
			}
			// The variable is a URL; for gRPC a plain http:// scheme means no TLS.
			if o.Protocol != telemetry.ProtocolHTTP {
				if rest, ok := strings.CutPrefix(ep, "http://"); ok {
					o.Endpoint, o.Insecure = rest, true
				} else if rest, ok := strings.CutPrefix(ep, "https://"); ok {
					o.Endpoint = rest
				}
			}
		}
	}
	if len(o.Headers) == 0 {
		if h := getenv("OTEL_EXPORTER_OTLP_HEADERS"); h != "" {
			if hs, err := telemetry.ParseHeaders(h); err == nil {
				o.Headers = hs
			} else {
				log.Warn("OTEL_EXPORTER_OTLP_HEADERS ignored", "error", err)
			}
		}
	}
	if o.CAFile == "" {
		o.CAFile = getenv("OTEL_EXPORTER_OTLP_CERTIFICATE")
	}
	if o.CertFile == "" {
		o.CertFile = getenv("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE")
	}
	if o.KeyFile == "" {
		o.KeyFile = getenv("OTEL_EXPORTER_OTLP_CLIENT_KEY")
	}
	if v := getenv("OTEL_EXPORTER_OTLP_INSECURE"); v != "" && !o.Insecure {
		o.Insecure, _ = strconv.ParseBool(v)
	}
	return telemetry.Options{
		OTLP:             o,
		PrometheusListen: cfg.Telemetry.Prometheus.Listen,
		Resource:         resource,
		Logger:           log,
		BuildVersion:     version.Version,
	}
}
