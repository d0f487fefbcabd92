//go:generate go run -C ../../internal/tools go.opentelemetry.io/collector/cmd/mdatagen ../../processor/aodanomalyconnector/metadata.yaml

// Package aodanomalyconnector is the collector side of aod's detectors: a connector that
// reads the SMB events the aod receiver emits as log records and emits anomalies as
// spans (logs → traces) and an anomaly counter (logs → metrics). A processor cannot do
// this, since it cannot change signal type.
//
// Each pipeline pair gets its own instance with its own detectors; both see the same
// records and so detect the same anomalies. The standalone agent skips this package
// and drives internal/detector on events directly.
//
// In a collector configuration:
//
//	connectors:
//	  aodanomaly:
//	    config_file: /etc/aod/aod.yaml   # or aod: {the same settings inline}
//	    proc_root: /proc                 # where net/tcp and net/tcp6 are read
//	    metrics_interval: 60s            # re-send period of the anomaly counter
//	service:
//	  pipelines:
//	    logs/aod:    {receivers: [aod], exporters: [aodanomaly]}
//	    traces/aod:  {receivers: [aodanomaly], exporters: [otlp_grpc]}
//	    metrics/aod: {receivers: [aodanomaly], exporters: [prometheus]}
//
// The records it reads are those of internal/otelconv.LogBuilder: aod.event.kind,
// smb.command, smb.operation.duration (s), smb.status, smb.rc, smb.session.id and
// smb.tree.id (0x-hex), smb.message.id, process.pid, thread.id, thread.name,
// server.address, smb.share, smb.connection.id, and the record timestamp as the
// event's end. Windows run on those timestamps.
package aodanomalyconnector
