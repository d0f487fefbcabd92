//go:build e2e

package e2e

// The io scenario: failed file operations of a process on the guest's SMB and NFS mounts
// (guest/scenario-io.sh), counted by the agent's io probe and compared with what the
// process itself saw.

import (
	"bufio"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/linuxdiag/aod/internal/actions"
)

const ioErrorsMetric = "io_client_errors_total"

// ioFailure is one line of io-workload.jsonl (e2eguest iofail).
type ioFailure struct {
	Mount string `json:"mount"`
	Op    string `json:"op"`
	Errno string `json:"errno"`
	Count int    `json:"count"`
}

func loadIOWorkload(t *testing.T, dir string) []ioFailure {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "io-workload.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []ioFailure
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var w ioFailure
		if err := json.Unmarshal(sc.Bytes(), &w); err != nil {
			t.Fatalf("io-workload.jsonl: %v", err)
		}
		out = append(out, w)
	}
	if len(out) != 5 {
		t.Fatalf("the io workload reported %d kinds of failure, want 5: %+v", len(out), out)
	}
	return out
}

// checkAgentIO: the agent's io.client.errors, per mount, operation and errno, equal the
// failures the workload saw; the two rules the workload crossed fired once each, with
// the SMB client's actions for the share's failures and the NFS client's for the NFS
// mount's, and the one it stayed under did not.
func checkAgentIO(t *testing.T, dir string, a *agentRun) {
	work := loadIOWorkload(t, dir)
	got := map[[3]string]float64{}
	for _, s := range series(a.metrics["final"], ioErrorsMetric) {
		got[[3]string{s.labels["system_filesystem_mountpoint"], s.labels["io_operation"], s.labels["error_type"]}] += s.value
	}
	// The io program runs at every system call's exit, on every task: a run the kernel
	// skipped (preempted, Linux 7.0+; requestSkips) may have been one of the workload's
	// failures, or any other call.
	skipped := runsSkipped(a.metrics["final"])["aod_io_exit"]
	gotW, wantW := map[string]float64{}, map[string]float64{}
	for _, w := range work {
		key := w.Op + " " + w.Errno + " on " + w.Mount
		gotW[key], wantW[key] = got[[3]string{w.Mount, w.Op, w.Errno}], float64(w.Count)
	}
	if short := shortfall(t, "the agent", "failures", "the workload saw", gotW, wantW, skipped != 0); short > float64(skipped) {
		t.Errorf("the agent counted %v failures fewer than the workload saw; the kernel skipped %d runs of the io program", short, skipped)
	}
	t.Logf("agent's io series: %v", got)

	rules := map[string]*bundle{}
	for i := range a.bundles {
		b := &a.bundles[i]
		if b.manifest.Anomaly.Protocol == "io" {
			if rules[b.manifest.Anomaly.Rule] != nil {
				t.Errorf("rule %s fired twice", b.manifest.Anomaly.Rule)
			}
			rules[b.manifest.Anomaly.Rule] = b
		}
	}
	for rule, want := range map[string]string{"path-miss-burst": actions.NameDebugData, "severe": actions.NameMountstats} {
		b := rules[rule]
		if b == nil {
			t.Errorf("no bundle of io rule %s (have %v)", rule, bundleNames(a))
			continue
		}
		var names []string
		for _, r := range b.manifest.Actions {
			names = append(names, r.Name)
		}
		if !slices.Contains(names, want) || !slices.Contains(names, actions.NameMounts) || len(b.members["events.jsonl"]) == 0 {
			t.Errorf("%s: actions %v, want %s, mounts and the failed calls", b.name, names, want)
		}
	}
	if rules["create-collision-burst"] != nil || len(rules) != 2 {
		t.Errorf("io rules fired: %v, want path-miss-burst and severe only", slices.Sorted(maps.Keys(rules)))
	}
}
