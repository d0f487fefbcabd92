// Command otelcol-aod is an OpenTelemetry Collector distribution with aod's
// components: the aod receiver (SMB latency metrics and slow/failed request
// records from eBPF), the aodanomaly connector (records -> anomaly spans and
// metrics) and the aodbundle connector (anomaly spans -> diagnostic bundles, their
// upload, and the records of both), beside the core OTLP,
// debug and batching components and the Prometheus exporter.
// builder-config.yaml describes the same distribution for the collector builder (ocb).
//
//	otelcol-aod --config otel-collector-example.yaml
package main

import (
	"fmt"
	"os"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/otelcol"

	"github.com/linuxdiag/aod/internal/version"
)

func main() {
	info := component.BuildInfo{
		Command:     "otelcol-aod",
		Description: "OpenTelemetry Collector with aod's SMB client diagnostics components",
		Version:     version.Version,
	}
	set := otelcol.CollectorSettings{
		BuildInfo: info,
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory(), envprovider.NewFactory()},
			},
		},
	}
	if err := otelcol.NewCommand(set).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
