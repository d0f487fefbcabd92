package aodbundleconnector

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"

	"github.com/linuxdiag/aod/exporter/aodbundleconnector/internal/metadata"
)

// NewFactory returns the aodbundle connector factory.
func NewFactory() connector.Factory {
	return connector.NewFactory(metadata.Type, func() component.Config { return createDefaultConfig() },
		connector.WithTracesToTraces(createTracesToTraces, metadata.TracesToTracesStability),
		connector.WithTracesToLogs(createTracesToLogs, metadata.TracesToLogsStability))
}

func createTracesToTraces(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Traces) (connector.Traces, error) {
	return instances.get(cfg.(*Config), set, func(c *bundleConnector) { c.traces = next })
}

func createTracesToLogs(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Logs) (connector.Traces, error) {
	return instances.get(cfg.(*Config), set, func(c *bundleConnector) { c.logs = next })
}
