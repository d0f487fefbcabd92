//go:build e2e

package e2e

// The agent's side of the end-to-end test: its configuration per scenario, and what it
// reported (Prometheus /metrics) and collected (bundles), checked against the kernel's own
// evidence of the same interval.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/linuxdiag/aod/internal/actions"
	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/anomalypdata"
	"github.com/linuxdiag/aod/internal/archive/archivetest"
	"github.com/linuxdiag/aod/internal/bundler"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/smb"
)

// ceilingMs replaces the default latency_ceiling_ms (1000): under emulation a single request
// stalls for over a second now and then (an NFSv4 CREATE of the healthy nfs scenario took
// 1.76 s on 6.1), which on a real host is the anomaly the ceiling is for.
const ceilingMs = 5000

// lookupStormCount replaces the default lookup_storm rule's acceptable_count (1000) in the
// errors and nfserrors scenarios: a thousand lookups take longer than one window under
// emulation.
const lookupStormCount = 25

// writeAodConfigs writes, for each scenario, the agent's embedded default configuration
// (as `aod config show` prints it) with these changes: metrics are collected every second
// (instead of 30 s) so /metrics holds a scenario's traffic as soon as the client is idle,
// the latency ceiling is ceilingMs,
// and, for the errors and nfserrors scenarios only, the SMB or NFS lookup_storm rule fires at
// lookupStormCount.
func writeAodConfigs(t *testing.T, aod, dir string, scenarios []string) {
	t.Helper()
	shown, err := exec.Command(aod, "config", "show").Output()
	if err != nil {
		t.Fatalf("aod config show: %v", err)
	}
	for _, name := range scenarios {
		var cfg map[string]any
		if err := yaml.Unmarshal(shown, &cfg); err != nil {
			t.Fatalf("aod config show printed no YAML mapping: %v", err)
		}
		set(t, cfg, 1, "telemetry", "otlp", "export_interval_sec")
		set(t, cfg, ceilingMs, "detection", "latency_ceiling_ms")
		// The io rules watch every scenario's processes on the mounts; only the io scenario
		// asserts on them, and the healthy baseline that they stay quiet.
		if name != "io" && name != "baseline" {
			delete(get(cfg, "anomalies").(map[string]any), "io")
		}
		if protocol, ok := map[string]string{"errors": "smb", "nfserrors": "nfs"}[name]; ok {
			rules, _ := get(cfg, "anomalies", protocol, "error", "rules").([]any)
			found := false
			for _, r := range rules {
				if m, ok := r.(map[string]any); ok && m["name"] == "lookup_storm" {
					m["acceptable_count"], found = lookupStormCount, true
				}
			}
			if !found {
				t.Fatalf("the default configuration has no %s lookup_storm error rule", protocol)
			}
		}
		data, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(aod, "config", "validate", file).CombinedOutput(); err != nil {
			t.Fatalf("the e2e configuration for %s does not validate: %v\n%s", name, err, out)
		}
	}
}

func get(m map[string]any, path ...string) any {
	var v any = m
	for _, k := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

func set(t *testing.T, m map[string]any, value any, path ...string) {
	t.Helper()
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			t.Fatalf("the default configuration has no mapping %s", strings.Join(path, "."))
		}
		m = next
	}
	m[path[len(path)-1]] = value
}

// agentRun is what the agent left in a scenario's folder.
type agentRun struct {
	metrics  map[string]map[string]*dto.MetricFamily // by snapshot name ("final", ...)
	bundles  []bundle                                // the anomalies' bundles
	shutdown []bundle                                // what it wrote as it stopped (bundle.shutdown_dump)
}

type bundle struct {
	name     string
	manifest bundler.Manifest
	members  map[string][]byte // by name inside the bundle's directory
}

// loadAgent reads the agent's evidence, or returns nil when the agent did not run.
func loadAgent(t *testing.T, dir string) *agentRun {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "aod.log")); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	exit, err := os.ReadFile(filepath.Join(dir, "aod.exit"))
	if err != nil || strings.TrimSpace(string(exit)) != "0" {
		t.Errorf("aod did not stop cleanly (exit %q, %v); log: %s", strings.TrimSpace(string(exit)), err, filepath.Join(dir, "aod.log"))
	}
	a := &agentRun{metrics: map[string]map[string]*dto.MetricFamily{}}
	snaps, _ := filepath.Glob(filepath.Join(dir, "metrics.*"))
	for _, f := range snaps {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		a.metrics[strings.TrimPrefix(filepath.Ext(f), ".")] = fams
	}
	if a.metrics["final"] == nil {
		t.Fatalf("no final /metrics from aod (log: %s)", filepath.Join(dir, "aod.log"))
	}
	files, _ := filepath.Glob(filepath.Join(dir, "aod-output", "batches", "*.tar.zst"))
	sort.Strings(files)
	for _, f := range files {
		b, err := readBundle(f)
		if err != nil {
			t.Errorf("bundle %s does not extract: %v", f, err)
			continue
		}
		if b.manifest.Anomaly.Type == anomaly.TypeShutdown {
			a.shutdown = append(a.shutdown, b)
			continue
		}
		a.bundles = append(a.bundles, b)
	}
	return a
}

// checkShutdownBundle: the agent stopped by SIGTERM wrote one shutdown bundle, as AODv2
// does, holding the kernel's Stats as the client left them and the requests in flight.
func checkShutdownBundle(t *testing.T, a *agentRun) {
	if len(a.shutdown) != 1 {
		t.Errorf("aod wrote %d shutdown bundles as it stopped, want 1", len(a.shutdown))
		return
	}
	b := a.shutdown[0]
	for _, m := range []string{"cifsstats.log", "debug_data.log", "inflight.jsonl"} {
		if _, ok := b.members[m]; !ok {
			t.Errorf("shutdown bundle %s has no %s", b.name, m)
		}
	}
	if stats := b.members["cifsstats.log"]; !bytes.Contains(stats, []byte("SMBs:")) {
		t.Errorf("shutdown bundle %s: cifsstats.log is not the kernel's Stats: %.200q", b.name, stats)
	}
}

// readBundle extracts a tar.zst bundle in memory: one top directory named like the file.
func readBundle(file string) (bundle, error) {
	b := bundle{name: strings.TrimSuffix(filepath.Base(file), ".tar.zst")}
	top, members, err := archivetest.Members(file)
	if err != nil {
		return b, err
	}
	if top != b.name {
		return b, fmt.Errorf("top directory %s, want %s", top, b.name)
	}
	b.members = members
	data, ok := b.members[bundler.ManifestName]
	if !ok {
		return b, errors.New("no manifest.json")
	}
	return b, json.Unmarshal(data, &b.manifest)
}

func (b *bundle) events(t *testing.T) []event.Event {
	t.Helper()
	var out []event.Event
	sc := bufio.NewScanner(bytes.NewReader(b.members["events.jsonl"]))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		e, _, err := anomalypdata.ParseEvent(sc.Bytes())
		if err != nil {
			t.Errorf("%s: events.jsonl: %v", b.name, err)
			continue
		}
		out = append(out, e)
	}
	return out
}

// series returns the samples of a metric family as (labels, value) pairs; histograms give
// their count.
type sample struct {
	labels map[string]string
	value  float64
	sum    float64 // histograms only
}

func series(fams map[string]*dto.MetricFamily, name string) []sample {
	f := fams[name]
	if f == nil {
		return nil
	}
	var out []sample
	for _, m := range f.GetMetric() {
		s := sample{labels: map[string]string{}}
		for _, l := range m.GetLabel() {
			s.labels[l.GetName()] = l.GetValue()
		}
		switch {
		case m.Histogram != nil:
			s.value, s.sum = float64(m.Histogram.GetSampleCount()), m.Histogram.GetSampleSum()
		case m.Counter != nil:
			s.value = m.Counter.GetValue()
		case m.Gauge != nil:
			s.value = m.Gauge.GetValue()
		case m.Untyped != nil:
			s.value = m.Untyped.GetValue()
		}
		out = append(out, s)
	}
	return out
}

const (
	durationMetric = "smb_client_operation_duration_seconds"
	errorsMetric   = "smb_client_errors_total"
)

// checkAgentCounts: the agent's request counts equal the trace's (and so, with the requests
// it still holds in flight, the kernel's Stats), per command and per failure status, with
// the server and share resolved, and it lost nothing.
func checkAgentCounts(t *testing.T, s *scenario, a *agentRun) {
	final := a.metrics["final"]
	completed := map[string]float64{}
	wantFail := map[string]float64{} // by "command status", as gotFail
	open, aborted := 0, 0
	for _, r := range s.reqs {
		switch {
		case r.completed():
			completed[cmdName(r.Command)]++
			if r.Failed {
				wantFail[cmdName(r.Command)+" "+smb.StatusName(r.Status)]++
			}
		case heldInFlight(r):
			open++
			if abortedByReconnect(s, r) {
				aborted++
			}
		}
	}
	got := map[string]float64{}
	for _, sm := range series(final, durationMetric) {
		cmd := sm.labels["smb_command"]
		got[cmd] += sm.value
		// Requests outside a tree have the server and no share; the session's IPC$ tree is
		// connected beside the share's.
		share := sm.labels["smb_share"]
		switch {
		case cmd == "SMB2_NEGOTIATE" || cmd == "SMB2_SESSION_SETUP" || cmd == "SMB2_LOGOFF" || cmd == "SMB2_ECHO":
			// Before the session exists (a reconnect's NEGOTIATE) the server is unknown too.
			if a := sm.labels["server_address"]; a != "127.0.0.1" && a != "" {
				t.Errorf("%s series %v: server is neither 127.0.0.1 nor unknown", durationMetric, sm.labels)
			}
		case sm.labels["server_address"] != "127.0.0.1":
			t.Errorf("%s series %v: server not resolved to 127.0.0.1", durationMetric, sm.labels)
		// The session's IPC$ tree is connected beside the share's and, after a reconnect
		// (7.x), asked for the server's network interfaces (an IOCTL).
		case share != "share" && !((cmd == "SMB2_TREE_CONNECT" || cmd == "SMB2_IOCTL") && share == "IPC$"):
			t.Errorf("%s series %v: share not resolved to \\\\127.0.0.1\\share", durationMetric, sm.labels)
		}
	}
	gotFail := map[string]float64{}
	for _, sm := range series(final, errorsMetric) {
		gotFail[sm.labels["smb_command"]+" "+sm.labels["error_type"]] += sm.value
	}
	skipped := runsSkipped(final)
	dropped := map[string]float64{}
	for _, sm := range series(final, "aod_events_dropped_total") {
		dropped[sm.labels["aod_drop_reason"]] += sm.value
	}
	sk := skipsOf(func(prog string) uint64 { return skipped[prog] })
	sk.checkCounts(t, s.kernel, "aod", got, completed, gotFail, wantFail, uint64(dropped["orphaned"]))
	// A request sent a moment before the trace began (an SMB2_ECHO) that a reconnect then
	// aborted is held by aod and by the test's probe, and is beyond the trace's judgement
	// (checkProbe): counted as the probe holds it.
	pre := 0
	if s.probe != nil && len(s.trace.Events) > 0 {
		for _, r := range s.probe.InFlight {
			if float64(r.StartNs)/1e9 < s.trace.Events[0].Time {
				pre++
			}
		}
	}
	open += pre
	aborted += pre
	// A skipped completion run leaves its request held (until the age-out sweep); a
	// skipped start run of a request that never completed leaves it unseen.
	inflight := series(final, "aod_requests_in_flight")
	held, unseen := open+int(sk.ends), int(sk.starts)-int(dropped["orphaned"])
	if len(inflight) != 1 || int(inflight[0].value) > held || int(inflight[0].value) < held-unseen {
		t.Errorf("aod reports %v requests in flight, the trace has %d that never completed and were not chained behind a failed member of their compound (and %d started before it); the kernel skipped %d completion and %d start runs", inflight, open-pre, pre, sk.ends, sk.starts)
	} else {
		// The kernel frees the requests a reconnect aborted; aod keeps them until its
		// age-out sweep, as it sees no end of theirs.
		if n := int64(open - aborted); n != s.after.MIDs {
			t.Errorf("with the client idle aod holds %v requests in flight (%d aborted by a reconnect, %d completion runs skipped), the kernel %d (Operations (MIDs))", inflight[0].value, aborted, sk.ends, s.after.MIDs)
		}
		t.Logf("in flight with the client idle: aod %v, kernel %d (Operations (MIDs)); %d aborted by a reconnect, %d completion runs skipped", inflight[0].value, s.after.MIDs, aborted, sk.ends)
	}
	for reason, n := range dropped {
		switch {
		case n == 0:
		case reason == "start_collision" && s.probe != nil && n == float64(s.probe.Counters.StartCollisions):
		case reason == "orphaned": // each a skipped start run (checkCounts)
		case reason == "probe_skipped" && uint64(n) == total(skipped): // by program: aod_bpf_runs_skipped
		default:
			t.Errorf("aod dropped %v (%s)", n, reason)
		}
	}
	t.Logf("aod: %v completed requests, %d in flight, %d bundles", total(got), open, len(a.bundles))
	s.kernel.note(t, "agent: %v completions per command and %v failures per (command, status) vs the trace; %d in flight vs the trace and Operations (MIDs)", total(got), total(gotFail), open)
}

func merge[K comparable](a, b map[K]float64) map[K]bool {
	out := map[K]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func total[V float64 | uint64](m map[string]V) V {
	var n V
	for _, v := range m {
		n += v
	}
	return n
}

// anomalies returns the agent's anomaly counter as type/rule -> count.
func anomalies(a *agentRun) map[string]float64 {
	out := map[string]float64{}
	for _, sm := range series(a.metrics["final"], "aod_anomalies_total") {
		out[sm.labels["aod_anomaly_protocol"]+"/"+sm.labels["aod_anomaly_type"]+"/"+sm.labels["aod_anomaly_rule"]] += sm.value
	}
	return out
}

// onlyFired checks that the agent's anomaly counter shows exactly the given anomaly
// (protocol/type/rule) once, and nothing else.
func onlyFired(t *testing.T, a *agentRun, want string) {
	for k, n := range anomalies(a) {
		if (k == want && n != 1) || (k != want && n != 0) {
			t.Errorf("aod fired %v %s anomalies; want only one %s", n, k, want)
		}
	}
}

// firedBundle returns the one bundle of the given protocol's anomaly type, failing the test
// unless exactly one was written, and checks what every anomaly bundle of the protocol must
// hold.
func firedBundle(t *testing.T, a *agentRun, protocol, typ string) *bundle {
	var found []*bundle
	for i := range a.bundles {
		if m := a.bundles[i].manifest.Anomaly; m.Protocol == protocol && m.Type == typ {
			found = append(found, &a.bundles[i])
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s %s bundle, have %d (anomalies %v)", protocol, typ, len(found), anomalies(a))
	}
	b := found[0]
	m := b.manifest
	// A connection the TCP table lost (rule dropped: 5.10, no connection tracepoint) is
	// no kernel event; every other anomaly has its events.
	polled := typ == "sockconn" && m.Anomaly.Rule == "dropped"
	if !polled && (len(b.members["events.jsonl"]) == 0 || m.Anomaly.Events == 0) {
		t.Errorf("%s holds no triggering events", b.name)
	}
	// Every action the manifest says succeeded left its files.
	for _, r := range m.Actions {
		for _, f := range r.Files {
			if _, ok := b.members[f]; !ok && r.Status == actions.StatusOK {
				t.Errorf("%s: action %s succeeded but its %s is missing", b.name, r.Name, f)
			}
		}
		if r.Status != actions.StatusOK {
			t.Logf("%s: action %s %s: %s%s", b.name, r.Name, r.Status, r.Error, r.Skipped)
		}
	}
	for _, e := range b.events(t) {
		if e.Protocol.String() != protocol {
			t.Errorf("%s: a %s anomaly's bundle holds a %v event: %+v", b.name, protocol, e.Protocol, e)
		}
	}
	switch protocol {
	case "smb":
		if !bytes.Contains(b.members["cifsstats.log"], []byte(`\\127.0.0.1\share`)) {
			t.Errorf("%s: cifsstats.log is not /proc/fs/cifs/Stats of the share", b.name)
		}
	case "nfs":
		for member, want := range map[string]string{
			"mountstats.log":    "device 127.0.0.1:/srv/nfs mounted on " + nfs3Mount,
			"nfs_rpc_stats.log": "proc4 ",
			"mounts.log":        "127.0.0.1:/ " + nfs4Mount + " nfs4",
			// The kernel's RPC clients (debugfs) with their in-flight tasks.
			"nfs_tasks.log": "== rpc_clnt ",
		} {
			if !bytes.Contains(b.members[member], []byte(want)) {
				t.Errorf("%s: %s does not hold %q (members: %v)", b.name, member, want, slices.Sorted(maps.Keys(b.members)))
			}
		}
	}
	t.Logf("%s bundle %s: rule %q, %d events, detected %s, written in %v; %s",
		typ, b.name, m.Anomaly.Rule, m.Anomaly.Events, m.Anomaly.DetectedAt.Format(time.RFC3339Nano),
		m.Completed.Sub(m.Anomaly.DetectedAt).Round(time.Millisecond), m.Anomaly.Reason)
	return b
}

// checkDetectedWithin: the anomaly was detected no later than one window and a second after
// the moment its condition became true (cause, on the guest's clock).
func checkDetectedWithin(t *testing.T, phases []phase, b *bundle, cause float64) {
	detected := b.manifest.Anomaly.DetectedAt
	at := wallTime(phases, cause)
	took := detected.Sub(at)
	limit := time.Duration(b.manifest.Anomaly.WindowS*float64(time.Second)) + time.Second
	t.Logf("time to anomaly: %v after its condition held (limit %v)", took.Round(time.Millisecond), limit)
	if took > limit {
		t.Errorf("the anomaly was detected %v after its condition held, want at most watch_interval_sec + 1 s = %v", took, limit)
	}
}

// checkAgentBaseline: healthy traffic fires no anomaly and makes no bundle.
func checkAgentBaseline(t *testing.T, _ *scenario, a *agentRun) {
	if len(a.bundles) != 0 {
		t.Errorf("healthy traffic made %d bundles: %v", len(a.bundles), bundleNames(a))
	}
	for k, n := range anomalies(a) {
		if n != 0 {
			t.Errorf("healthy traffic fired %v %s anomalies", n, k)
		}
	}
}

func bundleNames(a *agentRun) []string {
	var out []string
	for _, b := range a.bundles {
		out = append(out, b.name)
	}
	return out
}

// checkMeanLatencies: in each compared phase (clean, measured) the agent's histogram of
// metric (its /metrics at the phase's edges) holds as many requests as the trace's
// latencies of that phase (lat, seconds), with the same mean: the programs and the trace
// run at the same tracepoints, microseconds apart. It returns the agent's two means.
func checkMeanLatencies(t *testing.T, a *agentRun, metric string, lat map[string][]float64) (means [2]float64) {
	t.Helper()
	for i, ph := range []string{"clean", "measured"} {
		var n, sum float64
		for _, sm := range series(a.metrics[ph+"-end"], metric) {
			n, sum = n+sm.value, sum+sm.sum
		}
		for _, sm := range series(a.metrics[ph+"-start"], metric) {
			n, sum = n-sm.value, sum-sm.sum
		}
		var want float64
		for _, l := range lat[ph] {
			want += l
		}
		if int(n) != len(lat[ph]) || n == 0 {
			t.Errorf("%s phase: aod measured %v requests, the trace shows %d", ph, n, len(lat[ph]))
			continue
		}
		means[i], want = sum/n, want/n
		t.Logf("%s phase: aod mean latency %.3f ms, trace %.3f ms (%v requests)", ph, means[i]*1e3, want*1e3, n)
		// The trace prints whole microseconds (NFS) or nanoseconds of its clock (SMB).
		if d := means[i] - want; d > max(0.0005, 0.01*want) || d < -max(0.0005, 0.01*want) {
			t.Errorf("%s phase: aod's mean latency %.3f ms differs from the trace's %.3f ms", ph, means[i]*1e3, want*1e3)
		}
	}
	return means
}

// checkAgentLatency: the agent measured the same latencies as the kernel's trace (so its
// median rises with the trace's by the injected delay), and the latency anomaly fires in time
// with a complete bundle of slow events.
func checkAgentLatency(t *testing.T, s *scenario, a *agentRun) {
	means := checkMeanLatencies(t, a, durationMetric, s.latencies())
	t.Logf("aod mean latency rose by %.1f ms for %.0f ms injected", (means[1]-means[0])*1e3, injectedRoundTripSecs*1e3)

	onlyFired(t, a, "smb/latency/count")
	b := firedBundle(t, a, "smb", "latency")
	m := b.manifest.Anomaly
	threshold := m.ThresholdS
	events := b.events(t)
	if len(events) == 0 {
		t.Fatal("the latency bundle holds no slow events")
	}
	for _, e := range events {
		// A slow failure (a lookup of a missing name) is an error event, and slow all the same.
		if (e.Kind != event.KindSlow && e.Kind != event.KindError) || e.Latency().Seconds() < threshold {
			t.Errorf("latency bundle event %v %s %v is not a slow request (threshold %v s)", e.Kind, cmdName(e.Command), e.Latency(), threshold)
		}
	}
	for _, member := range []string{"cifsstats.log", "debug_data.log", "mounts.log", "dmesg.log"} {
		if len(b.members[member]) == 0 {
			t.Errorf("the latency bundle has no %s (members: %v)", member, slices.Sorted(maps.Keys(b.members)))
		}
	}
	if !bytes.Contains(b.members["mounts.log"], []byte("//127.0.0.1/share")) {
		t.Errorf("%s: mounts.log does not list the share", b.name)
	}
	// The condition holds once acceptable_count delayed requests completed over the threshold.
	var slowEnds []float64
	for _, r := range s.reqs {
		if r.completed() && phaseAt(s.phases, r.Start) == "delayed" && r.End-r.Start >= threshold {
			slowEnds = append(slowEnds, r.End)
		}
	}
	sort.Float64s(slowEnds)
	if m.Limit == 0 || len(slowEnds) < m.Limit {
		t.Fatalf("the anomaly fired on rule %q with acceptable_count %d; the trace has %d slow requests", m.Rule, m.Limit, len(slowEnds))
	}
	checkDetectedWithin(t, s.phases, b, slowEnds[m.Limit-1])
}

// checkAgentCompound: with the client idle, the agent holds nothing in flight, though the
// trace shows requests that never completed (checkCompound).
// A completion run the kernel skipped (requestSkips) leaves one held.
func checkAgentCompound(t *testing.T, _ *scenario, a *agentRun) {
	skipped := runsSkipped(a.metrics["final"])
	ends := skipsOf(func(prog string) uint64 { return skipped[prog] }).ends
	if in := series(a.metrics["final"], "aod_requests_in_flight"); len(in) != 1 || in[0].value != float64(ends) {
		t.Errorf("aod reports %v requests in flight after failed compounds, want %d (completion runs the kernel skipped)", in, ends)
	}
}

// runsSkipped returns the agent's aod.bpf.runs_skipped by program.
func runsSkipped(scrape map[string]*dto.MetricFamily) map[string]uint64 {
	out := map[string]uint64{}
	for _, sm := range series(scrape, "aod_bpf_runs_skipped_total") {
		out[sm.labels["aod_bpf_program"]] += uint64(sm.value)
	}
	return out
}

// checkAgentErrors: reads to the end of a file fire nothing; the lookup burst fires the
// lookup_storm rule, naming STATUS_OBJECT_NAME_NOT_FOUND.
func checkAgentErrors(t *testing.T, s *scenario, a *agentRun) {
	onlyFired(t, a, "smb/error/lookup_storm")
	b := firedBundle(t, a, "smb", "error")
	m := b.manifest.Anomaly
	if m.Rule != "lookup_storm" {
		t.Errorf("the error anomaly names rule %q, want lookup_storm", m.Rule)
	}
	if !slices.ContainsFunc(m.TopStatuses, func(x bundler.Tally) bool { return x.Value == "STATUS_OBJECT_NAME_NOT_FOUND" }) {
		t.Errorf("the error anomaly's statuses %v do not name STATUS_OBJECT_NAME_NOT_FOUND", m.TopStatuses)
	}
	if missing := s.phaseWall("missing"); m.DetectedAt.Before(missing) {
		t.Errorf("the error anomaly was detected at %v, before the lookup burst began (%v): the reads to end of file fired it", m.DetectedAt, missing)
	}
	for _, e := range b.events(t) {
		if e.Status == statusEndOfFile {
			t.Errorf("a read to end of file is among the error anomaly's events: %+v", e)
		}
	}
	var notFound []float64
	for _, r := range s.reqs {
		if r.Failed && r.Status == statusNameNotFound && phaseAt(s.phases, r.Start) == "missing" {
			notFound = append(notFound, r.End)
		}
	}
	sort.Float64s(notFound)
	if len(notFound) < lookupStormCount {
		t.Fatalf("only %d lookups failed in the burst", len(notFound))
	}
	checkDetectedWithin(t, s.phases, b, notFound[lookupStormCount-1])
}

// checkAgentReconnect: losing the server fires the connection anomaly.
func checkAgentReconnect(t *testing.T, s *scenario, a *agentRun) {
	b := firedBundle(t, a, "smb", "sockconn")
	s.kernel.note(t, "agent: connection anomaly %s/%s detected %v after the server stopped", b.manifest.Anomaly.Type, b.manifest.Anomaly.Rule, b.manifest.Anomaly.DetectedAt.Sub(s.phaseWall("stop")).Round(time.Millisecond))
	if stop := s.phaseWall("stop"); b.manifest.Anomaly.DetectedAt.Before(stop) {
		t.Errorf("the connection anomaly was detected at %v, before the server stopped (%v)", b.manifest.Anomaly.DetectedAt, stop)
	}
	if len(s.reconnects) > 0 {
		checkDetectedWithin(t, s.phases, b, s.reconnects[0])
	}
}
