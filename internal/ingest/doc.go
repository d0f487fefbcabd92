// Package ingest runs aod's kernel probes and turns what they report into
// OpenTelemetry data: it drains the ring buffer of slow and failed requests into event
// batches and log records, and periodically reads the in-kernel histograms and counters
// and /proc/fs/cifs into metrics. It is a plain Go type driven through callbacks, used
// as is by the standalone agent and wrapped by the collector receiver
// (receiver/aodreceiver). It needs Linux; elsewhere the package holds only its defaults.
package ingest
