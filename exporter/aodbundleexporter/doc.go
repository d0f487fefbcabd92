//go:generate go run -C ../../internal/tools go.opentelemetry.io/collector/cmd/mdatagen ../../exporter/aodbundleexporter/metadata.yaml

// Package aodbundleexporter is the collector exporter "aodbundle": it consumes the
// anomaly spans of aod's detector connector and writes a diagnostic bundle for each,
// reporting every action run as a child span of the anomaly (through the component's
// own TracerProvider) with the bundle's path on it.
package aodbundleexporter
