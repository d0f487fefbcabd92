package detector

import (
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/linuxdiag/aod/internal/anomalypdata"
	"github.com/linuxdiag/aod/internal/cifsproc"
	"github.com/linuxdiag/aod/internal/podattr"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/wallclock"
)

// Clock gives the detectors the clocks they need. Windows and cooldowns run on
// CLOCK_MONOTONIC nanoseconds, the clock the kernel stamps events with
// (bpf_ktime_get_ns), so detection depends only on when requests happened, never on
// when user space read them, and a wall-clock step cannot open or close a window.
// Wall-clock time is used only to report when things happened.
type Clock interface {
	// Now is the wall-clock time, for DetectedAt.
	Now() time.Time
	// Monotonic is the events' clock now. The connection detector stamps polls with it.
	Monotonic() uint64
	// Time converts an event timestamp to wall-clock time.
	Time(mono uint64) time.Time
}

// SystemClock is the host's clocks, with event timestamps converted by a
// wallclock.Converter (share the receiver's, so both agree).
type SystemClock struct{ *wallclock.Converter }

// NewSystemClock returns a SystemClock with its own converter.
func NewSystemClock() SystemClock { return SystemClock{wallclock.New(time.Minute)} }

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// Monotonic returns CLOCK_MONOTONIC, as bpf_ktime_get_ns does.
func (SystemClock) Monotonic() uint64 { return wallclock.Monotonic() }

// Time converts a CLOCK_MONOTONIC timestamp, re-measuring the clocks' offset first if
// it is stale (anomalies are rare, so this costs nothing).
func (c SystemClock) Time(mono uint64) time.Time {
	c.MaybeRefresh()
	return c.Converter.Time(mono)
}

// ShareResolver names the share a request went to, from its SMB session and tree ids.
// It returns "" when it does not know them.
type ShareResolver func(sessionID uint64, treeID uint32) string

// SharesFrom makes a ShareResolver from a share-name lookup such as
// (*cifsproc.ShareNames).Lookup.
func SharesFrom(lookup func(sessionID uint64, treeID uint32) (cifsproc.Name, bool)) ShareResolver {
	return func(sessionID uint64, treeID uint32) string {
		n, ok := lookup(sessionID, treeID)
		if !ok {
			return ""
		}
		return UNC(n)
	}
}

// UNC writes a share's name the way Windows and mount.cifs do: \\server\share, or
// \\server when only the server is known, or "" when nothing is.
func UNC(n cifsproc.Name) string {
	switch {
	case n.Server == "":
		return ""
	case n.Share == "":
		return `\\` + n.Server
	}
	return `\\` + n.Server + `\` + n.Share
}

// Env holds what the detectors depend on besides their parameters. Zero fields take
// the host's defaults.
type Env struct {
	// Protocol is whose events the detectors watch; events of other protocols pass
	// by. It must have a registered proto.Table.
	Protocol proto.Protocol
	Clock    Clock         // nil: NewSystemClock()
	Share    ShareResolver // nil: shares are named by their ids
	// Workload names the workload of a request's cgroup (*podattr.Resolver's Lookup).
	// nil: anomalies name processes only.
	Workload func(cgroupID uint64) (podattr.Workload, bool)
	// NewIDs returns the trace and span ids of a new anomaly span. nil: random ids.
	NewIDs func() (trace [16]byte, span [8]byte)
	// Proc is the procfs root the connection detector reads net/tcp and net/tcp6 from.
	// nil: /proc.
	Proc fs.FS
	// KernelEnds reports whether the kernel reports each of the protocol's connection
	// ends with its cause (event.KindLost, event.KindClosed: NFS's disconnect probes are
	// attached). While it does, the connection detector does not diff the TCP table,
	// which cannot tell a lost connection from one the client closed. nil: known from
	// the first such event.
	KernelEnds func() bool
}

// checked returns env with its defaults and its protocol's table, or an error when
// the protocol has no table.
func (e Env) checked() (Env, *proto.Table, error) {
	t := proto.Lookup(e.Protocol)
	if t == nil {
		return e, nil, fmt.Errorf("detector: no name table for protocol %v", e.Protocol)
	}
	return e.withDefaults(), t, nil
}

func (e Env) withDefaults() Env {
	if e.Clock == nil {
		e.Clock = NewSystemClock()
	}
	if e.NewIDs == nil {
		e.NewIDs = anomalypdata.NewIDs
	}
	if e.Proc == nil {
		e.Proc = os.DirFS("/proc")
	}
	return e
}
