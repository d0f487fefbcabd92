// Package collectorlog gives aod's collector components the one logging API of its
// engines, log/slog, on top of the zap logger the collector hands every component.
// It is aod's only slog-to-zap adapter; its opposite, for the collector exporters the
// standalone agent hosts, is in internal/telemetry.
package collectorlog

import (
	"log/slog"

	"go.opentelemetry.io/collector/component"
	"go.uber.org/zap/exp/zapslog"
)

// New returns a logger writing to the component's zap core, so that what the engines
// log carries the component's identity fields and follows the collector's level and
// encoding. Records keep their call site as the caller, as the collector's own do.
func New(set component.TelemetrySettings) *slog.Logger {
	return slog.New(zapslog.NewHandler(set.Logger.Core(), zapslog.WithCaller(true)))
}
