// Package anomaly defines what a detector reports and what the exporter acts on.
// It sits between processor/ and exporter/ so that neither depends on the other.
package anomaly

import (
	"time"

	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/podattr"
)

// Types of anomaly, as AODv2 names them in its configuration.
const (
	TypeLatency  = "latency"
	TypeError    = "error"
	TypeSockconn = "sockconn"
	// TypeSnapshot is an on-demand collection, not a detected anomaly.
	TypeSnapshot = "snapshot"
	// TypeShutdown is the collection aod makes as it stops, not a detected anomaly.
	TypeShutdown = "shutdown"
)

// Tally is one entry of a "top N" list: how many triggering events had Value.
type Tally struct {
	Value string
	Count int
}

// Anomaly is one detection: enough to name it in a span, a metric and a bundle
// manifest, and the bounded set of events that triggered it.
type Anomaly struct {
	TraceID [16]byte // the anomaly span's trace; exporters hang child spans under SpanID
	SpanID  [8]byte

	Protocol string // "smb" (later "nfs", "io")
	Type     string // TypeLatency, TypeError, TypeSockconn, TypeSnapshot, TypeShutdown
	Rule     string // the rule that fired: an error rule's name, "count" or "ceiling" for latency
	Reason   string // one human sentence: what crossed which limit

	FirstEvent time.Time     // wall-clock time of the first triggering event in the window
	DetectedAt time.Time     // wall-clock time the detector fired
	Window     time.Duration // the detection window (watch_interval_sec)

	Count      int           // triggering events in the window when it fired
	Limit      int           // acceptable_count that was reached (0 for a ceiling hit)
	Threshold  time.Duration // latency threshold involved, where one applies
	MaxLatency time.Duration // slowest triggering request
	Suppressed int           // repeats suppressed by the cooldown since the last emitted one

	TopCommands  []Tally
	TopShares    []Tally
	TopProcesses []Tally
	TopStatuses  []Tally
	// TopWorkloads names the pods, containers or systemd units that issued the
	// triggering requests (podattr.Workload.Name).
	TopWorkloads []Tally
	// TopServers names the servers of a connection anomaly: host names from kernel
	// connection events, remote addresses of connections that disappeared.
	TopServers []Tally

	Events []event.Event // the triggering events, oldest first, bounded
	// Workloads names the cgroups of the Events' issuers (event.Event.CgroupID), those
	// that could be named.
	Workloads map[uint64]podattr.Workload
	// EventTimeOffset turns the Events' timestamps (StartNs, EndNs) into Unix
	// nanoseconds: unix = ns + EventTimeOffset. The kernel stamps events with
	// CLOCK_MONOTONIC, so the detector records the clocks' offset when it fires;
	// events decoded from OpenTelemetry records are already Unix time (offset 0).
	EventTimeOffset int64
}

// EventTime converts one of the Events' timestamps to wall-clock time.
func (a *Anomaly) EventTime(ns uint64) time.Time {
	return time.Unix(0, int64(ns)+a.EventTimeOffset)
}
