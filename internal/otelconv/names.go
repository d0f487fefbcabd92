// Package otelconv turns what the kernel probes, /proc/fs/cifs and /proc/self/mountstats
// report into OpenTelemetry data: latency histograms, error counters, the cifs Stats
// counters, the NFS mounts' counters and the receiver's own counters as pmetric, and
// slow or failed requests as plog records.
// Every name it emits is listed in docs/metrics.md.
package otelconv

import (
	"github.com/linuxdiag/aod/internal/cifsproc"
	"github.com/linuxdiag/aod/internal/proto"
)

// ScopeName is the instrumentation scope of everything this package builds.
const ScopeName = "github.com/linuxdiag/aod/receiver"

// Attribute keys.
const (
	AttrServer     = "server.address" // server host as the share was mounted
	AttrFilePath   = "file.path"      // io: the path a failed file operation was given
	AttrErrorType  = "error.type"     // NTSTATUS name of a failed request
	AttrProtocol   = "aod.protocol"   // the protocol of an event record: smb, nfs, io
	AttrEventKind  = "aod.event.kind"
	AttrPid        = "process.pid"
	AttrTid        = "thread.id"
	AttrComm       = "thread.name"
	AttrDirection  = "cifs.io.direction"     // read, write
	AttrOpenScope  = "cifs.open_files.scope" // local, server
	AttrBufferSize = "cifs.buffer.size"      // large, small
	AttrReconnect  = "cifs.reconnect.scope"  // session, share
	AttrDropReason = "aod.drop.reason"
	AttrProgram    = "aod.bpf.program"
	AttrHook       = "aod.bpf.hook" // a tracepoint, or fexit/FUNCTION, of aod.bpf.hook.attached
	AttrProcFile   = "aod.cifs.file"
	AttrOverflow   = "otel.metric.overflow" // true on the series past the cardinality limit
	AttrMetric     = "aod.metric"           // the metric aod.metric.overflow.series counts for
)

// Resolver names the share (or export) and server behind a protocol's (session id,
// tree id) pair: for SMB the cifs session and tree ids, for NFS the RPC client id.
// The protocol is part of the key because the protocols' ids overlap.
type Resolver interface {
	Lookup(p proto.Protocol, sessionID uint64, treeID uint32) (cifsproc.Name, bool)
}
