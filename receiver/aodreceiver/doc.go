//go:generate go run -C ../../internal/tools go.opentelemetry.io/collector/cmd/mdatagen ../../receiver/aodreceiver/metadata.yaml

// Package aodreceiver is the OpenTelemetry Collector receiver "aod": latency
// histograms, error counts and the cifs client's own counters as metrics, and one log
// record per slow or failed SMB request, measured in the kernel by aod's eBPF probes.
// Each protocol has its own section of the configuration (smb today).
// It is a thin wrapper around internal/ingest, which the standalone agent runs
// directly. The receiver needs Linux; elsewhere it builds, and fails at start.
package aodreceiver
