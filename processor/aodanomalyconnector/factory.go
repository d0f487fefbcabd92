package aodanomalyconnector

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"

	"github.com/linuxdiag/aod/processor/aodanomalyconnector/internal/metadata"
)

// NewFactory returns the connector's factory.
func NewFactory() connector.Factory {
	return connector.NewFactory(metadata.Type,
		func() component.Config { return createDefaultConfig() },
		connector.WithLogsToTraces(createLogsToTraces, metadata.LogsToTracesStability),
		connector.WithLogsToMetrics(createLogsToMetrics, metadata.LogsToMetricsStability),
	)
}

func createLogsToTraces(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Traces) (connector.Logs, error) {
	return newConnector(set, cfg.(*Config), next, nil)
}

func createLogsToMetrics(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Metrics) (connector.Logs, error) {
	return newConnector(set, cfg.(*Config), nil, next)
}
