package aodbundleexporter

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/linuxdiag/aod/exporter/aodbundleexporter/internal/metadata"
)

// NewFactory returns the aodbundle exporter factory.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(metadata.Type, func() component.Config { return createDefaultConfig() },
		exporter.WithTraces(createTraces, metadata.TracesStability))
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
