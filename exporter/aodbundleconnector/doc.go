//go:generate go run -C ../../internal/tools go.opentelemetry.io/collector/cmd/mdatagen ../../exporter/aodbundleconnector/metadata.yaml

// Package aodbundleconnector is the collector connector "aodbundle": it consumes the
// anomaly spans of aod's detector connector, writes a diagnostic bundle for each (and
// uploads it, when configured), and sends what came of it down the pipelines it
// feeds: traces to traces, the bundle's span and one span per action under the
// anomaly's span and an aod.upload span when the upload ended; traces to logs, the
// aod.bundle and aod.upload log records naming the anomaly's span. One instance
// serves both, so each anomaly gets one bundle.
package aodbundleconnector
