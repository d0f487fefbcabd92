//go:build e2e

package e2e

// The NFS fault scenarios, NFS's twins of latency, errors and reconnect: nfslatency,
// nfserrors and nfsreconnect, on the guest's NFS mounts. The kernel's own view (each RPC's
// rpc_stats_latency with its execute time, the NFS status of failed replies, the
// transports' connects, mountstats) against what the agent measured and detected.

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/linuxdiag/aod/internal/bundler"
	"github.com/linuxdiag/aod/internal/event"
)

// nfsScenario is the evidence an NFS scenario left.
type nfsScenario struct {
	dir      string
	trace    *trace
	rpcs     []rpc
	phases   []phase
	versions map[int]*nfsVersion // the two mounts, with mountstats before and after
}

// nfsChecks are the NFS scenarios' checks, with the agent's evidence (nil when the agent did
// not run).
var nfsChecks = map[string]func(*testing.T, *nfsScenario, *agentRun){
	"nfs":          checkNFSWorkload,
	"nfslatency":   checkNFSLatency,
	"nfserrors":    checkNFSErrors,
	"nfsreconnect": checkNFSReconnect,
}

func loadNFSScenario(t *testing.T, dir string) *nfsScenario {
	t.Helper()
	exit, err := os.ReadFile(filepath.Join(dir, "exit"))
	if err != nil {
		t.Fatalf("scenario did not run: %v", err)
	}
	if strings.TrimSpace(string(exit)) != "0" {
		t.Errorf("scenario script exited with %s (console: %s)", strings.TrimSpace(string(exit)), filepath.Join(dir, "..", "console.log"))
	}
	s := &nfsScenario{dir: dir, versions: loadNFS(t, dir)}
	traces, _ := filepath.Glob(filepath.Join(dir, "trace.*"))
	if len(traces) != 1 {
		t.Fatalf("want one trace file in %s, have %v", dir, traces)
	}
	data, err := os.ReadFile(traces[0])
	if err != nil {
		t.Fatal(err)
	}
	if s.trace, err = parseTrace(data); err != nil {
		t.Fatal(err)
	}
	if s.trace.Written != s.trace.InBuffer {
		t.Errorf("the trace ring lost events: %d written, %d kept", s.trace.Written, s.trace.InBuffer)
	}
	if s.rpcs, err = s.trace.rpcs(); err != nil {
		t.Fatal(err)
	}
	if data, err = os.ReadFile(filepath.Join(dir, "phases")); err != nil {
		t.Fatal(err)
	}
	if s.phases, err = parsePhases(data); err != nil {
		t.Fatal(err)
	}
	return s
}

// checkNFSWorkload: the nfs scenario's checks (nfs_test.go).
func checkNFSWorkload(t *testing.T, s *nfsScenario, a *agentRun) {
	checkNFS(t, s)
	if a != nil {
		checkAgentNFS(t, s.versions, a)
		checkAgentNFSProbes(t, s.versions, a)
		checkAgentBaseline(t, nil, a)
	}
}

// phaseRPCs returns the RPCs that started in each phase.
func (s *nfsScenario) phaseRPCs() map[string][]rpc {
	out := map[string][]rpc{}
	for _, r := range s.rpcs {
		ph := phaseAt(s.phases, r.At-r.Execute)
		out[ph] = append(out[ph], r)
	}
	return out
}

// checkNFSLatency: the median RPC execute time rises by the injected round-trip delay within
// ±20 %; the agent measured, per compared phase, as many RPCs as the trace shows with the
// same mean latency (the programs read the execute time rpc_stats_latency reports); the NFS
// latency anomaly fires, only it, within a window of its condition holding, with a bundle of
// slow NFS RPCs and the NFS actions' output.
func checkNFSLatency(t *testing.T, s *nfsScenario, a *agentRun) {
	byPhase := s.phaseRPCs()
	execs := func(ph string) []float64 {
		var out []float64
		for _, r := range byPhase[ph] {
			out = append(out, r.Execute)
		}
		return out
	}
	clean, delayed := execs("clean"), execs("measured")
	if len(clean) < 10 || len(delayed) < 10 {
		t.Fatalf("too few RPCs to compare: %d clean, %d delayed", len(clean), len(delayed))
	}
	mc, md := median(clean), median(delayed)
	delta := md - mc
	t.Logf("median RPC execute time %.1f ms clean (%d RPCs), %.1f ms delayed (%d): +%.1f ms for %.0f ms injected",
		mc*1e3, len(clean), md*1e3, len(delayed), delta*1e3, injectedRoundTripSecs*1e3)
	if delta < 0.8*injectedRoundTripSecs || delta > 1.2*injectedRoundTripSecs {
		t.Errorf("median RPC execute time rose by %.1f ms, want %.0f ms ± 20 %%", delta*1e3, injectedRoundTripSecs*1e3)
	}
	if a == nil {
		return
	}
	for _, ph := range []string{"clean", "measured"} {
		var n, sum float64
		for _, sm := range series(a.metrics[ph+"-end"], nfsDurationMetric) {
			n, sum = n+sm.value, sum+sm.sum
		}
		for _, sm := range series(a.metrics[ph+"-start"], nfsDurationMetric) {
			n, sum = n-sm.value, sum-sm.sum
		}
		var want float64
		for _, r := range byPhase[ph] {
			want += r.Execute
		}
		if n == 0 || int(n) != len(byPhase[ph]) {
			t.Errorf("%s phase: aod measured %v RPCs, the trace shows %d", ph, n, len(byPhase[ph]))
			continue
		}
		mean, want := sum/n, want/n
		t.Logf("%s phase: aod mean RPC latency %.3f ms, trace %.3f ms (%v RPCs)", ph, mean*1e3, want*1e3, n)
		// The trace prints whole microseconds.
		if d := mean - want; d > max(0.0005, 0.01*want) || d < -max(0.0005, 0.01*want) {
			t.Errorf("%s phase: aod's mean RPC latency %.3f ms differs from the trace's %.3f ms", ph, mean*1e3, want*1e3)
		}
	}

	onlyFired(t, a, "nfs/latency/count")
	b := firedBundle(t, a, "nfs", "latency")
	m := b.manifest.Anomaly
	for _, e := range b.events(t) {
		if (e.Kind != event.KindSlow && e.Kind != event.KindError) || e.Latency().Seconds() < m.ThresholdS {
			t.Errorf("latency bundle event %v %v %v is not a slow RPC (threshold %v s)", e.Kind, e.Cmd(), e.Latency(), m.ThresholdS)
		}
	}
	// The condition holds once acceptable_count delayed RPCs completed over the threshold.
	var slowEnds []float64
	for _, r := range byPhase["delayed"] {
		if r.Execute >= m.ThresholdS {
			slowEnds = append(slowEnds, r.At)
		}
	}
	sort.Float64s(slowEnds)
	if m.Limit == 0 || len(slowEnds) < m.Limit {
		t.Fatalf("the anomaly fired on rule %q with acceptable_count %d; the trace has %d slow RPCs", m.Rule, m.Limit, len(slowEnds))
	}
	checkDetectedWithin(t, s.phases, b, slowEnds[m.Limit-1])
}

// nfs4OpLookup is OP_LOOKUP, the operation nfs4_xdr_status names.
const nfs4OpLookup = 15

// checkNFSErrors: each lookup of a missing name failed once with NFS4ERR_NOENT; the agent
// counted every one of them (its failure counter against the trace), and the lookup_storm
// rule fired, only it, within a window of the burst reaching its count, naming NFS4ERR_NOENT.
func checkNFSErrors(t *testing.T, s *nfsScenario, a *agentRun) {
	var noent []float64 // completions of the failed lookups, in the missing phase
	var all int
	for _, e := range s.trace.Events {
		if e.Name != "nfs4_xdr_status" {
			continue
		}
		rc, op := e.Fields["error"], e.Fields["operation"]
		if rc != "-2" || op != "15" {
			t.Errorf("a reply failed with error=%s operation=%s at %.6f, where only lookups of missing names (error=-2 operation=%d) fail", rc, op, e.Time, nfs4OpLookup)
			continue
		}
		all++
		if phaseAt(s.phases, e.Time) == "missing" {
			noent = append(noent, e.Time)
		}
	}
	if len(noent) != 50 {
		t.Errorf("%d lookups failed with NFS4ERR_NOENT in the burst, want one per missing name, 50", len(noent))
	}
	if a == nil {
		return
	}
	var counted float64
	for _, sm := range series(a.metrics["final"], nfsErrorsMetric) {
		if sm.labels["nfs_command"] == "NFSPROC4_CLNT_LOOKUP" && sm.labels["error_type"] == "NFS4ERR_NOENT" {
			counted += sm.value
		}
	}
	t.Logf("aod counted %v NFSPROC4_CLNT_LOOKUP failures with NFS4ERR_NOENT, the trace %d", counted, all)
	if counted != float64(all) {
		t.Errorf("aod counted %v NFSPROC4_CLNT_LOOKUP failures with NFS4ERR_NOENT, the trace shows %d", counted, all)
	}

	onlyFired(t, a, "nfs/error/lookup_storm")
	b := firedBundle(t, a, "nfs", "error")
	m := b.manifest.Anomaly
	if !slices.ContainsFunc(m.TopStatuses, func(x bundler.Tally) bool { return x.Value == "NFS4ERR_NOENT" }) {
		t.Errorf("the error anomaly's statuses %v do not name NFS4ERR_NOENT", m.TopStatuses)
	}
	if missing := phaseWall(s.phases, "missing"); m.DetectedAt.Before(missing) {
		t.Errorf("the error anomaly was detected at %v, before the lookup burst began (%v)", m.DetectedAt, missing)
	}
	for _, e := range b.events(t) {
		if e.Kind != event.KindError || e.Cmd().String() != "NFSPROC4_CLNT_LOOKUP" || e.Stat().String() != "NFS4ERR_NOENT" {
			t.Errorf("the error bundle holds an event that is not a failed lookup: %v %v %v", e.Kind, e.Cmd(), e.Stat())
		}
	}
	if len(noent) < lookupStormCount {
		t.Fatalf("only %d lookups failed in the burst", len(noent))
	}
	checkDetectedWithin(t, s.phases, b, noent[lookupStormCount-1])
}

// checkNFSReconnect: each mount's transport connected again once the server was back (its
// mountstats connect count rose, and the trace shows a connect to port 2049 per mount); the
// agent's NFS connection anomaly fired on the kernel's reconnect (the client reuses its
// source port, so the TCP table shows the same connection before and after), after the
// server stopped, within a window of the first reconnect, and nothing else fired.
func checkNFSReconnect(t *testing.T, s *nfsScenario, a *agentRun) {
	var connects uint64
	for vers, v := range s.versions {
		var before, after uint64
		for _, x := range v.before.Transports {
			before += x.Connects
		}
		for _, x := range v.after.Transports {
			after += x.Connects
		}
		t.Logf("NFSv%d (%s): transport connect count %d before, %d after", vers, v.mount, before, after)
		if after <= before {
			t.Errorf("%s: mountstats counts %d connects before the server restarted and %d after: it did not reconnect", v.mount, before, after)
		}
		connects += after - before
	}
	var reconnects []float64
	for _, e := range s.trace.Events {
		// error=0, or -EINPROGRESS: a TCP connect under way. Other errors are failed attempts.
		if e.Name == "rpc_socket_connect" && strings.HasSuffix(e.Fields["dstaddr"], ":2049") &&
			(e.Fields["error"] == "0" || e.Fields["error"] == "-115") {
			reconnects = append(reconnects, e.Time)
		}
	}
	// The kernel counts more than one per connection in mountstats (its count rose by 2 per
	// mount on 6.12 for one traced connect): compare the mounts, not the numbers.
	t.Logf("the trace shows %d connects to port 2049; mountstats' connect counts rose by %d", len(reconnects), connects)
	if len(reconnects) < len(s.versions) {
		t.Fatalf("the trace shows %d connects to port 2049, want at least one per mount (%d)", len(reconnects), len(s.versions))
	}
	if a == nil {
		return
	}
	b := firedBundle(t, a, "nfs", "sockconn")
	m := b.manifest.Anomaly
	t.Logf("NFS connection anomaly, rule %s: %s", m.Rule, m.Reason)
	if m.Rule != "reconnect" {
		t.Errorf("the NFS connection anomaly fired on rule %q, want reconnect (the kernel's)", m.Rule)
	}
	if stop := phaseWall(s.phases, "stop"); m.DetectedAt.Before(stop) {
		t.Errorf("the connection anomaly was detected at %v, before the server stopped (%v)", m.DetectedAt, stop)
	}
	checkDetectedWithin(t, s.phases, b, reconnects[0])
	onlyFired(t, a, "nfs/sockconn/reconnect")
}
