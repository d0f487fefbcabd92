// Package config loads aod's YAML configuration: AODv2's schema (the 2026 form
// first-class, the 2025 form translated) plus aod's own sections, into a typed
// Config with every default applied. Validation reports every problem of a file at
// once, each with file:line:column, key path, the bad value and what is allowed.
//
// A Config is shared by every component of the agent and must be treated as
// read-only; Parse returns a fresh one each time.
package config

import (
	"slices"
	"time"

	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/captureargs"
	"github.com/linuxdiag/aod/internal/errno"
	"github.com/linuxdiag/aod/internal/proto"
)

// Protocols: the keys under anomalies:.
const (
	ProtocolSMB = "smb"
	ProtocolNFS = "nfs"
	ProtocolIO  = "io"
)

// Mode says which SMB commands a latency anomaly watches.
type Mode string

// Latency modes, as AODv2 names them.
const (
	// ModeAll watches every command: track_commands set their own thresholds, the
	// rest use default_threshold_ms, exclude_commands are ignored.
	ModeAll Mode = "all"
	// ModeTrackOnly watches only track_commands.
	ModeTrackOnly Mode = "trackonly"
	// ModeExcludeOnly watches every command but exclude_commands, at default_threshold_ms.
	ModeExcludeOnly Mode = "excludeonly"
)

// LegacyRuleName names the single rule of an error anomaly written in AODv2's legacy
// form (acceptable_count, track_commands and track_errors directly in the section).
const LegacyRuleName = "default"

// Action names. Quick actions run a command once when an anomaly fires; captures
// are tools that take an argument list.
const (
	ActionDmesg      = "dmesg"
	ActionJournalctl = "journalctl"
	ActionDebugData  = "debugdata" // /proc/fs/cifs/DebugData
	ActionStats      = "stats"     // /proc/fs/cifs/Stats
	ActionMounts     = "mounts"
	ActionSMBInfo    = "smbinfo"
	ActionSyslogs    = "syslogs"
	ActionTcpdump    = captureargs.Tcpdump
	ActionTraceCmd   = captureargs.TraceCmd
)

// Config is the whole effective configuration.
type Config struct {
	WatchInterval time.Duration // watch_interval_sec: the detection window
	OutputDir     string        // aod_output_dir: bundles go to OutputDir/batches
	Anomalies     Anomalies
	Cleanup       Cleanup
	Telemetry     Telemetry
	Detection     Detection
	Collection    Collection
	Bundle        Bundle
	Upload        Upload
	Workloads     Workloads
}

// Anomalies holds the anomalies: section, one entry per protocol.
type Anomalies struct {
	SMB Protocol
	NFS Protocol
	IO  Protocol
}

// Of returns the anomalies configured for protocol p (empty for one aod does not know).
func (a *Anomalies) Of(p proto.Protocol) *Protocol {
	switch p {
	case proto.SMB:
		return &a.SMB
	case proto.NFS:
		return &a.NFS
	case proto.IO:
		return &a.IO
	}
	return &Protocol{}
}

// Protocol holds the anomalies of one protocol; nil means not configured.
type Protocol struct {
	Latency  *LatencyAnomaly
	Error    *ErrorAnomaly
	Sockconn *SockconnAnomaly // never set for io
}

// Types lists the configured anomaly types of p in the order latency, error, sockconn
// (anomaly.TypeLatency, ...), for reporting what is watched.
func (p *Protocol) Types() []string {
	var t []string
	if p.Latency != nil {
		t = append(t, anomaly.TypeLatency)
	}
	if p.Error != nil {
		t = append(t, anomaly.TypeError)
	}
	if p.Sockconn != nil {
		t = append(t, anomaly.TypeSockconn)
	}
	return t
}

// LatencyAnomaly fires when AcceptableCount requests of watched commands reach their
// command's threshold within one window (or one request reaches
// Detection.LatencyCeiling).
type LatencyAnomaly struct {
	Tool             string // smbslower, nfsslower, ioslower
	Mode             Mode
	AcceptableCount  int
	DefaultThreshold time.Duration      // default_threshold_ms
	TrackCommands    []CommandThreshold // canonical names for smb and nfs
	ExcludeCommands  []string           // canonical names for smb and nfs
	Actions          []Action
}

// CommandThreshold is one track_commands entry; Threshold is already defaulted to
// DefaultThreshold when the file gave none.
type CommandThreshold struct {
	Command   string
	Threshold time.Duration
}

// Threshold returns the threshold of command cmd of t's protocol and whether l watches
// it at all, from Mode, DefaultThreshold, TrackCommands and ExcludeCommands.
func (l *LatencyAnomaly) Threshold(t *proto.Table, cmd uint16) (time.Duration, bool) {
	name := t.CommandName(cmd)
	if name == "" {
		return 0, false
	}
	if l.Mode != ModeTrackOnly && slices.Contains(l.ExcludeCommands, name) {
		return 0, false
	}
	if l.Mode != ModeExcludeOnly {
		for _, tc := range l.TrackCommands {
			if tc.Command == name {
				return tc.Threshold, true
			}
		}
	}
	if l.Mode == ModeTrackOnly {
		return 0, false
	}
	return l.DefaultThreshold, true
}

// Commands returns the commands of t's protocol that l watches.
func (l *LatencyAnomaly) Commands(t *proto.Table) proto.CommandSet {
	var s proto.CommandSet
	for code := range t.AllCommands() {
		if _, ok := l.Threshold(t, code); ok {
			s = s.With(code)
		}
	}
	return s
}

// ErrorAnomaly fires when one of its rules counts AcceptableCount matching failed
// requests within one window. Each rule counts on its own.
type ErrorAnomaly struct {
	Tool string // smbiosnoop, nfsiosnoop, iosnoop
	// Legacy is true when the file used the single-rule form; Rules then holds one
	// rule named LegacyRuleName and show writes the section back in that form.
	Legacy  bool
	Rules   []ErrorRule
	Actions []Action
}

// ErrorRule is one named error rule. A failure matches when its command is in
// TrackCommands and its error in TrackErrors; an empty list matches anything, and at
// least one of the two is never empty.
type ErrorRule struct {
	Name            string
	AcceptableCount int
	TrackCommands   []string // canonical command names for smb and nfs
	// TrackErrors holds canonical NTSTATUS names (STATUS_IO_TIMEOUT) and errno names
	// (EIO) for smb, an errno matching failures the kernel mapped to that errno; for
	// nfs, NFS status names (NFS4ERR_STALE; NFSv3 aliases made the NFSv4 name) and
	// errno names, an errno matching RPCs that failed without an NFS status.
	TrackErrors []string
}

// ErrorMatch is an error rule resolved to its protocol's codes. Each empty list
// matches anything.
type ErrorMatch struct {
	Commands []uint16 // command codes (SMB2 commands for smb)
	Statuses []uint32 // failure statuses (NTSTATUS for smb), sorted
	// Errnos are positive errno values, sorted. A failure matches the error axis when its
	// status is in Statuses or its -rc is in Errnos.
	Errnos []int32
}

// Match resolves r's names against the command and status tables of t's protocol and
// the errno table.
func (r *ErrorRule) Match(t *proto.Table) ErrorMatch {
	var m ErrorMatch
	for _, name := range r.TrackCommands {
		if code, ok := t.LookupCommand(name); ok {
			m.Commands = append(m.Commands, code)
		}
	}
	for _, name := range r.TrackErrors {
		if code, ok := lookupStatus(t, name); ok {
			m.Statuses = append(m.Statuses, code)
		} else if e, ok := errno.Lookup(name); ok {
			m.Errnos = append(m.Errnos, e)
		}
	}
	slices.Sort(m.Commands)
	slices.Sort(m.Statuses)
	slices.Sort(m.Errnos)
	return m
}

// SockconnAnomaly fires when AcceptableCount connection losses (dropped connections,
// reconnects, failed connects) happen within one window.
type SockconnAnomaly struct {
	Tool            string // ss
	AcceptableCount int    // aod addition; 1 when absent: any loss fires, as in AODv2
	Actions         []Action
}

// Action is one entry of an anomaly's actions, in file order.
type Action struct {
	Name string   // ActionDmesg, ..., ActionTcpdump, ActionTraceCmd
	Args []string // a capture's arguments (passed to tcpdump, or to `trace-cmd record`); nil for a quick action
}

// IsCapture reports whether a is a capture tool (tcpdump, trace-cmd) rather than a
// quick action.
func (a Action) IsCapture() bool { return captureargs.Known(a.Name) }

// Cleanup is AODv2's retention of bundles under OutputDir.
type Cleanup struct {
	Interval     time.Duration // cleanup_interval_sec
	MaxAge       time.Duration // max_log_age_days
	MaxTotalSize int64         // max_total_log_size_mb, in bytes (MiB = 2^20 bytes)
}

// Telemetry configures what aod exports.
type Telemetry struct {
	OTLP       OTLP
	Prometheus Prometheus
	// CardinalityLimit bounds the series of each request metric (a protocol's
	// operation duration, its errors): past it, new series fold into one series
	// carrying only otel.metric.overflow=true, as OpenTelemetry's cardinality limit
	// does, and aod.metric.overflow.series counts them.
	CardinalityLimit int
}

// OTLP configures the OTLP exporter; an empty Endpoint turns it off.
type OTLP struct {
	Endpoint       string            // host:port, or an http(s):// URL
	Protocol       string            // "grpc" or "http"
	Headers        map[string]string // nil when none
	Compression    string            // "gzip" or "none"
	Timeout        time.Duration     // per export
	ExportInterval time.Duration     // metric export period
	TLS            TLS
}

// TLS configures the OTLP connection's TLS.
type TLS struct {
	Insecure           bool   // plain text, no TLS
	CAFile             string // PEM roots; "" uses the system pool
	CertFile           string // client certificate (with KeyFile)
	KeyFile            string
	ServerName         string // overrides the name checked in the server certificate
	InsecureSkipVerify bool   // TLS without checking the server certificate
}

// Prometheus configures the /metrics endpoint; an empty Listen turns it off.
type Prometheus struct {
	Listen string // host:port
}

// Workloads says where aod reads what names the pod, container or systemd unit of a
// request's issuer (internal/podattr), and whether metrics carry them.
type Workloads struct {
	// CgroupRoot is the cgroup v2 hierarchy's mount point; "" finds it in
	// /proc/self/mountinfo.
	CgroupRoot      string
	PodLogDir       string // kubelet's /var/log/pods
	ContainerLogDir string // kubelet's /var/log/containers
	// MetricAttributes puts the issuer's namespace, pod and container (or container id,
	// or systemd unit) on the SMB request metrics: one series per share, command,
	// status and workload. Off by default: pods multiply the series.
	MetricAttributes bool
}

// Detection tunes the detectors beyond what AODv2 exposed.
type Detection struct {
	// Cooldown is the minimum time between two anomalies of the same protocol and
	// type (and, for errors, rule); repeats in between are counted as suppressed.
	Cooldown time.Duration
	// LatencyCeiling fires a latency anomaly on any single watched request at least
	// this slow (AODv2 hard-coded 1 s); 0 disables it.
	LatencyCeiling time.Duration
	MaxEvents      int // triggering events kept with one anomaly
	// IOFileSystems are the file system types (as /proc/self/mountinfo names them)
	// whose mounts the io probe watches; IOFileSystemsAll ("all") alone watches every
	// mount. Default: the network file systems, DefaultIOFileSystems.
	IOFileSystems []string
}

// IOFileSystemsAll, alone in detection.io_filesystems, watches failed file operations
// on every mount.
const IOFileSystemsAll = "all"

// DefaultIOFileSystems are the mounts the io probe watches unless detection.io_filesystems
// says otherwise: SMB and NFS, where failures users report come from.
var DefaultIOFileSystems = []string{"cifs", "smb3", "nfs", "nfs4"}

// Collection bounds the actions run when an anomaly fires.
type Collection struct {
	Timeout     time.Duration // per action; the action is killed after it
	Lookback    time.Duration // how far back dmesg/journalctl/syslogs output reaches
	MaxOutput   int64         // bytes of output kept per action; the rest is cut and marked
	Concurrency int           // actions run at once
}

// Bundle configures the tar.zst bundles.
type Bundle struct {
	ZstdLevel int   // 1 (fastest) .. 22 (smallest)
	MinFree   int64 // bytes that must stay free on OutputDir's file system; 0: no floor
	// ShutdownDump writes a bundle of every configured action when aod stops, as
	// AODv2 2026 always did.
	ShutdownDump bool
}

// lookupStatus is t.LookupStatus for a table that may have no status names.
func lookupStatus(t *proto.Table, name string) (uint32, bool) {
	if t.LookupStatus == nil {
		return 0, false
	}
	return t.LookupStatus(name)
}
