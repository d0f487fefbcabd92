package bundler

import (
	"encoding/hex"
	"maps"
	"os"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/internal/actions"
	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/podattr"
	"github.com/linuxdiag/aod/internal/version"
)

// ManifestFormat is the version of manifest.json's layout.
const ManifestFormat = 1

// ManifestName is the manifest's member name (under the bundle's top directory).
const ManifestName = "manifest.json"

// Manifest is manifest.json: what fired, on which host, and what every action did.
type Manifest struct {
	Format    int              `json:"format"`
	Bundle    string           `json:"bundle"`
	Started   time.Time        `json:"started"`
	Completed time.Time        `json:"completed"`
	Host      Host             `json:"host"`
	Agent     Agent            `json:"agent"`
	Anomaly   AnomalyInfo      `json:"anomaly"`
	Window    Window           `json:"window"`
	Limits    Limits           `json:"limits"`
	Actions   []actions.Result `json:"actions"`
}

// Host identifies the machine and its kernel.
type Host struct {
	Name          string `json:"name"`
	KernelRelease string `json:"kernel_release"`
	KernelVersion string `json:"kernel_version"`
	Machine       string `json:"machine"`
}

// Agent identifies the aod build.
type Agent struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Commit  string `json:"commit"`
}

// AnomalyInfo is the anomaly without its events (those are in events.jsonl).
type AnomalyInfo struct {
	TraceID      string     `json:"trace_id,omitempty"`
	SpanID       string     `json:"span_id,omitempty"`
	Protocol     string     `json:"protocol"`
	Type         string     `json:"type"`
	Rule         string     `json:"rule,omitempty"`
	Reason       string     `json:"reason,omitempty"`
	FirstEvent   *time.Time `json:"first_event,omitempty"`
	DetectedAt   time.Time  `json:"detected_at"`
	WindowS      float64    `json:"window_s,omitempty"`
	Count        int        `json:"count"`
	Limit        int        `json:"acceptable_count,omitempty"`
	ThresholdS   float64    `json:"threshold_s,omitempty"`
	MaxLatencyS  float64    `json:"max_latency_s,omitempty"`
	Suppressed   int        `json:"suppressed,omitempty"`
	Events       int        `json:"events"`
	TopCommands  []Tally    `json:"top_commands,omitempty"`
	TopShares    []Tally    `json:"top_shares,omitempty"`
	TopProcesses []Tally    `json:"top_processes,omitempty"`
	TopStatuses  []Tally    `json:"top_statuses,omitempty"`
	TopServers   []Tally    `json:"top_servers,omitempty"`
	TopWorkloads []Tally    `json:"top_workloads,omitempty"`
	// Workloads names the cgroups the triggering requests came from, each with the
	// attributes the event records give it (aod.cgroup.id, process.linux.cgroup,
	// k8s.pod.name, container.id, ...), by cgroup id.
	Workloads []map[string]string `json:"workloads,omitempty"`
}

// Window is the time range the time-filtered actions covered: from the configured
// lookback before the detection until the collection started.
type Window struct {
	Since     time.Time `json:"since"`
	Until     time.Time `json:"until"`
	LookbackS float64   `json:"lookback_s"`
}

// Limits are the bounds the actions ran under.
type Limits struct {
	ActionTimeoutS float64 `json:"action_timeout_s"`
	ActionBytes    int64   `json:"action_bytes"`
	// Shrunk says ActionBytes was lowered from the configured limit to keep the
	// filesystem's free-space floor.
	Shrunk    bool  `json:"shrunk,omitempty"`
	FreeBytes int64 `json:"free_bytes"` // free space when the bundle started
}

func hostInfo() Host {
	var h Host
	h.Name, _ = os.Hostname()
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		h.KernelRelease = unix.ByteSliceToString(u.Release[:])
		h.KernelVersion = unix.ByteSliceToString(u.Version[:])
		h.Machine = unix.ByteSliceToString(u.Machine[:])
	}
	return h
}

func agentInfo() Agent {
	return Agent{Name: "aod", Version: version.Version, Commit: version.Revision()}
}

func anomalyInfo(a *anomaly.Anomaly) AnomalyInfo {
	info := AnomalyInfo{Protocol: a.Protocol, Type: a.Type, Rule: a.Rule, Reason: a.Reason, DetectedAt: a.DetectedAt,
		WindowS: a.Window.Seconds(), Count: a.Count, Limit: a.Limit, ThresholdS: a.Threshold.Seconds(),
		MaxLatencyS: a.MaxLatency.Seconds(), Suppressed: a.Suppressed, Events: len(a.Events),
		TopCommands: tallies(a.TopCommands), TopShares: tallies(a.TopShares), TopProcesses: tallies(a.TopProcesses),
		TopStatuses: tallies(a.TopStatuses), TopServers: tallies(a.TopServers), TopWorkloads: tallies(a.TopWorkloads),
		Workloads: workloads(a.Workloads)}
	if a.TraceID != [16]byte{} {
		info.TraceID = hex.EncodeToString(a.TraceID[:])
		info.SpanID = hex.EncodeToString(a.SpanID[:])
	}
	if !a.FirstEvent.IsZero() {
		first := a.FirstEvent
		info.FirstEvent = &first
	}
	return info
}

func workloads(m map[uint64]podattr.Workload) []map[string]string {
	var out []map[string]string
	for _, id := range slices.Sorted(maps.Keys(m)) {
		attrs := map[string]string{podattr.KeyCgroupID: "0x" + strconv.FormatUint(id, 16)}
		m[id].Attributes(func(k, v string) { attrs[k] = v })
		out = append(out, attrs)
	}
	return out
}

// Tally is one entry of a top-N list.
type Tally struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

func tallies(in []anomaly.Tally) []Tally {
	out := make([]Tally, len(in))
	for i, t := range in {
		out[i] = Tally(t)
	}
	return out
}
