//go:build e2e

package e2e

// The NFS fault scenarios, NFS's twins of latency, errors and reconnect: nfslatency,
// nfserrors and nfsreconnect, on the guest's NFS mounts. The kernel's own view (each RPC's
// rpc_stats_latency with its execute time, the NFS status of failed replies, the
// transports' connects, mountstats) against what the agent measured and detected.

import (
	"slices"
	"sort"
	"strconv"
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
	kernel   *kernelRun
	// programs: aod's NFS programs loaded on this kernel (checkNFS says).
	programs bool
}

// nfsChecks are the NFS scenarios' checks, with the agent's evidence (nil when the agent did
// not run).
var nfsChecks = map[string]func(*testing.T, *nfsScenario, *agentRun){
	"nfs":          checkNFSWorkload,
	"nfslatency":   checkNFSLatency,
	"nfserrors":    checkNFSErrors,
	"nfsreconnect": checkNFSReconnect,
	"nfsidle":      checkNFSIdle,
}

func loadNFSScenario(t *testing.T, dir string) *nfsScenario {
	t.Helper()
	s := &nfsScenario{dir: dir, versions: loadNFS(t, dir)}
	s.trace, s.phases = readScenarioRun(t, dir)
	if s.trace.Written != s.trace.InBuffer {
		t.Errorf("the trace ring lost events: %d written, %d kept", s.trace.Written, s.trace.InBuffer)
	}
	var err error
	if s.rpcs, err = s.trace.rpcs(); err != nil {
		t.Fatal(err)
	}
	return s
}

// checkNFSWorkload: the nfs scenario's checks (nfs_test.go).
func checkNFSWorkload(t *testing.T, s *nfsScenario, a *agentRun) {
	checkNFS(t, s)
	if a != nil {
		checkAgentNFS(t, s.versions, a)
		if s.programs {
			checkAgentNFSProbes(t, s.versions, a)
		}
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
	lat := map[string][]float64{} // the RPCs' execute times by phase
	for ph, rpcs := range byPhase {
		for _, r := range rpcs {
			lat[ph] = append(lat[ph], r.Execute)
		}
	}
	checkDelayed(t, lat)
	if a == nil {
		return
	}
	checkMeanLatencies(t, a, nfsDurationMetric, lat)

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
		if rc != "-2" || op != strconv.Itoa(nfs4OpLookup) {
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
// mountstats connect count rose, and the trace shows a connect to port 2049 per mount, each
// after the server's close forced its transport's disconnect); the agent exports the
// kernel's connect counts as they are after the restart, and its NFS connection anomaly
// fired on the kernel's report of a lost connection (the TCP table cannot tell it from the
// client's own close of an idle connection), after the server stopped, within a window of
// the first forced disconnect, and nothing else fired (the reconnects that follow fall in
// its cooldown).
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
	var forced []float64 // the kernel's forced disconnects of transports to the server (its close)
	for _, e := range s.trace.Events {
		switch {
		case e.Name == "xprt_disconnect_force" && strings.HasSuffix(e.Fields["peer"], ":2049"):
			forced = append(forced, e.Time)
		// error=0, or -EINPROGRESS: a TCP connect under way. Other errors are failed attempts.
		case e.Name == "rpc_socket_connect" && strings.HasSuffix(e.Fields["dstaddr"], ":2049") &&
			(e.Fields["error"] == "0" || e.Fields["error"] == "-115"):
			if len(forced) == 0 {
				t.Errorf("a connect to %s at %.6f with no forced disconnect before it: %s", e.Fields["dstaddr"], e.Time, e.Text)
			}
			reconnects = append(reconnects, e.Time)
		}
	}
	t.Logf("the trace shows %d forced disconnects of transports to port 2049", len(forced))
	// The kernel counts more than one per connection in mountstats (its count rose by 2 per
	// mount on 6.12 for one traced connect): compare the mounts, not the numbers.
	t.Logf("the trace shows %d connects to port 2049; mountstats' connect counts rose by %d", len(reconnects), connects)
	if len(reconnects) < len(s.versions) {
		t.Fatalf("the trace shows %d connects to port 2049, want at least one per mount (%d)", len(reconnects), len(s.versions))
	}
	if a == nil {
		return
	}
	var got, want float64
	for _, sm := range series(a.metrics["final"], "nfs_client_mountstats_transport_connects_total") {
		got += sm.value
	}
	for _, v := range s.versions {
		for _, x := range v.after.Transports {
			want += float64(x.Connects)
		}
	}
	if got != want {
		t.Errorf("the agent exports %v transport connects, mountstats after the restart %v", got, want)
	}
	b := firedBundle(t, a, "nfs", "sockconn")
	m := b.manifest.Anomaly
	t.Logf("NFS connection anomaly, rule %s: %s", m.Rule, m.Reason)
	if m.Rule != "dropped" || !strings.Contains(m.Reason, "lost") {
		t.Errorf("the NFS connection anomaly fired on rule %q (%s), want dropped, from the kernel's report of a lost connection", m.Rule, m.Reason)
	}
	if stop := phaseWall(s.phases, "stop"); m.DetectedAt.Before(stop) {
		t.Errorf("the connection anomaly was detected at %v, before the server stopped (%v)", m.DetectedAt, stop)
	}
	checkDetectedWithin(t, s.phases, b, forced[0])
	onlyFired(t, a, "nfs/sockconn/dropped")
}

// checkNFSIdle: the client closed an idle transport itself (the trace shows its
// xprt_disconnect_auto before any forced disconnect, with no request awaiting a reply)
// and the next RPC reopened it; the agent fires nothing: the TCP table shows the closed
// connection gone, and only the kernel's report of how it ended tells it from a lost one.
func checkNFSIdle(t *testing.T, s *nfsScenario, a *agentRun) {
	var auto, forced, connects []float64
	for _, e := range s.trace.Events {
		switch {
		case e.Name == "xprt_disconnect_auto" && strings.HasSuffix(e.Fields["peer"], ":2049"):
			auto = append(auto, e.Time)
		case e.Name == "xprt_disconnect_force" && strings.HasSuffix(e.Fields["peer"], ":2049"):
			forced = append(forced, e.Time)
		case e.Name == "rpc_socket_connect" && strings.HasSuffix(e.Fields["dstaddr"], ":2049"):
			connects = append(connects, e.Time)
		}
	}
	t.Logf("the trace shows %d autocloses, %d forced disconnects and %d connects of transports to port 2049", len(auto), len(forced), len(connects))
	if len(auto) == 0 || len(connects) == 0 {
		t.Fatalf("no idle close (%d autocloses) or no reconnect after it (%d connects)", len(auto), len(connects))
	}
	if len(forced) > 0 && forced[0] < auto[0] {
		t.Errorf("a forced disconnect at %.6f came before the first autoclose at %.6f: not an idle close", forced[0], auto[0])
	}
	if connects[0] < auto[0] {
		t.Errorf("a connect at %.6f came before the idle close at %.6f", connects[0], auto[0])
	}
	if a != nil {
		checkAgentBaseline(t, nil, a)
	}
}
