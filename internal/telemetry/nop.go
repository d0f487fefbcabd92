package telemetry

import (
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// The exporters' self-telemetry is not exported: aod reports its own health metrics.
func nopTracerProvider() trace.TracerProvider { return tracenoop.NewTracerProvider() }
func nopMeterProvider() metric.MeterProvider  { return metricnoop.NewMeterProvider() }
