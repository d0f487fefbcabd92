// Package aodbundleexporter is the collector exporter "aodbundle": it consumes the
// anomaly spans of aod's detector connector and writes a diagnostic bundle for each,
// reporting every action run as a child span of the anomaly (through the component's
// own TracerProvider) with the bundle's path on it.
package aodbundleexporter

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// Type is the exporter's type in collector configurations.
var Type = component.MustNewType("aodbundle")

// NewFactory returns the aodbundle exporter factory.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(Type, func() component.Config { return createDefaultConfig() },
		exporter.WithTraces(createTraces, component.StabilityLevelDevelopment))
}

func createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	e, err := newBundleExporter(cfg.(*Config), set)
	if err != nil {
		return nil, err
	}
	// No queue, retry or timeout: consuming only hands anomalies to the bundler,
	// which never blocks and bounds its own work (a bundle that cannot start at once
	// is skipped and counted, never queued).
	return exporterhelper.NewTraces(ctx, set, cfg, e.consume,
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}))
}
