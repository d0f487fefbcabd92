//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/linuxdiag/aod/internal/actions"
	"github.com/linuxdiag/aod/internal/anomaly"
	"gopkg.in/yaml.v3"
)

// The systemd scenario: aod installed from the .deb `make package` builds and run by systemd
// as PID 1 (guest/scenario-systemd.sh says what each step does). It is not one of main.sh's
// scenarios: the guest runs it last, after handing over to systemd.
const systemdScenario = "systemd"

// systemdOutputDir is the scenario's aod_output_dir: outside /var/log/aod, the one directory
// the packaged unit makes writable, so that a drop-in is needed.
const systemdOutputDir = "/srv/aod-out"

// debs are the packages the scenario installs, built once per test run.
var debs struct {
	once              sync.Once
	install, upgrade  string // aod.deb, and aod-upgrade.deb: the same tree, a higher version
	version, upgraded string
	err               error
}

// buildDebs runs `make package` twice, as packaging's tests do: first with a higher
// version, whose .deb is kept aside as the upgrade, then as is.
func buildDebs(t *testing.T, module, dir string) {
	t.Helper()
	debs.once.Do(func() {
		v, err := exec.Command(filepath.Join(module, "packaging", "version.sh")).Output()
		if err != nil {
			debs.err = err
			return
		}
		debs.version = strings.TrimSpace(string(v))
		debs.upgraded = debs.version + "+1"
		if err := os.MkdirAll(dir, 0o755); err != nil {
			debs.err = err
			return
		}
		for _, b := range []struct{ args, dst string }{
			{"PKG_VERSION=" + debs.upgraded, "aod-upgrade.deb"},
			{"", "aod.deb"},
		} {
			args := []string{"-C", module, "package"}
			if b.args != "" {
				args = append(args, b.args)
			}
			if out, err := exec.Command("make", args...).CombinedOutput(); err != nil {
				debs.err = fmt.Errorf("make %s: %v\n%s", strings.Join(args, " "), err, out)
				return
			}
			built, _ := filepath.Glob(filepath.Join(module, "dist", "*.deb"))
			if len(built) != 1 {
				debs.err = fmt.Errorf("make package left %v in dist/, want one .deb", built)
				return
			}
			if debs.err = os.Rename(built[0], filepath.Join(dir, b.dst)); debs.err != nil {
				return
			}
		}
		debs.install, debs.upgrade = filepath.Join(dir, "aod.deb"), filepath.Join(dir, "aod-upgrade.deb")
	})
	if debs.err != nil {
		t.Fatal(debs.err)
	}
}

// prepareSystemd puts what the scenario needs in the run folder: the two packages, the
// agent's configuration, and the flag that makes main.sh hand over to systemd.
func prepareSystemd(t *testing.T, module, run string) {
	t.Helper()
	cache := filepath.Join(filepath.Dir(run), "pkg")
	buildDebs(t, module, cache)
	pkg := filepath.Join(run, "pkg")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{debs.install: "aod.deb", debs.upgrade: "aod-upgrade.deb"} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pkg, dst), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The configuration writeAodConfigs wrote for the scenario, with the bundles outside
	// /var/log/aod and both captures on the SMB latency anomaly: tcpdump on loopback (the
	// guest's only interface) and trace-cmd of the cifs events.
	file := filepath.Join(run, "aod", systemdScenario+".yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	set(t, cfg, systemdOutputDir, "aod_output_dir")
	set(t, cfg, 5, "anomalies", "smb", "latency", "acceptable_count")
	acts, ok := get(cfg, "anomalies", "smb", "latency", "actions").(map[string]any)
	if !ok {
		t.Fatal("the default configuration has no SMB latency actions")
	}
	acts["tcpdump"] = []string{"-i", "lo", "-s", "256", "-C", "1", "-W", "2"}
	acts["trace-cmd"] = []string{"-e", "cifs"}
	if data, err = yaml.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, "systemd"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// exposure is systemd-analyze security's verdict line.
var exposure = regexp.MustCompile(`Overall exposure level for aod\.service: ([0-9.]+) (\S+)`)

// checkSystemd asserts on the scenario's evidence (see guest/scenario-systemd.sh).
func checkSystemd(t *testing.T, k *kernelRun, dir string) {
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("the systemd scenario left no %s: %v", name, err)
		}
		return strings.TrimSpace(string(data))
	}
	if s := read("status"); s != "done" {
		t.Fatalf("the systemd scenario did not run to its end (status %q; see %s)", s, filepath.Join(dir, "script.log"))
	}
	// install: enabled, not started.
	if read("install.exit") != "0" || read("install.state") != "enabled inactive" {
		t.Errorf("dpkg -i: exit %s, the unit %q after it, want 0 and \"enabled inactive\"\n%s", read("install.exit"), read("install.state"), read("install.log"))
	}
	if v := read("install.version"); v != debs.version+"-1" {
		t.Errorf("installed version %q, want %s-1", v, debs.version)
	}
	// refused: a clear message, naming the fix.
	refused := read("refused.log")
	if read("refused.result") == "success" || !strings.Contains(refused, "aod_output_dir "+systemdOutputDir+" is not writable") ||
		!strings.Contains(refused, "ReadWritePaths="+systemdOutputDir) {
		t.Errorf("with aod_output_dir %s and no drop-in the unit ended %q; its journal does not say why and what to add:\n%s", systemdOutputDir, read("refused.result"), refused)
	}
	// run: the anomaly's bundle, every action done, under the unit's hardening.
	if read("run.exit") != "0" {
		t.Errorf("systemctl start with the drop-in: exit %s", read("run.exit"))
	}
	a := loadAgent(t, dir)
	if a == nil {
		t.Fatal("the agent's journal (aod.log) is missing")
	}
	if len(a.bundles) == 0 {
		t.Fatalf("no anomaly bundle in %s", systemdOutputDir)
	}
	b := a.bundles[0]
	if b.manifest.Anomaly.Protocol != "smb" || b.manifest.Anomaly.Type != anomaly.TypeLatency {
		t.Errorf("bundle %s is of %s %s, want smb latency", b.name, b.manifest.Anomaly.Protocol, b.manifest.Anomaly.Type)
	}
	ran := map[string]actions.Result{}
	for _, r := range b.manifest.Actions {
		ran[r.Name] = r
		if r.Status != actions.StatusOK {
			t.Errorf("bundle %s: action %s %s: %s%s", b.name, r.Name, r.Status, r.Error, r.Skipped)
		}
	}
	member := func(action string) []byte {
		r, ok := ran[action]
		if !ok || len(r.Files) == 0 {
			t.Errorf("bundle %s: no %s action, or it wrote nothing", b.name, action)
			return nil
		}
		var all []byte
		for _, f := range r.Files {
			all = append(all, b.members[f]...)
		}
		return all
	}
	if j := member(actions.NameJournalctl); !bytes.Contains(j, []byte("aod.service")) && !bytes.Contains(j, []byte("aod[")) {
		t.Errorf("bundle %s: the journal holds nothing of aod's own unit: %.300q", b.name, j)
	}
	// tcpdump's pcap header is 24 bytes; the SMB packets of the slow requests follow.
	if p := member("tcpdump"); len(p) <= 24 || !(bytes.HasPrefix(p, []byte{0xd4, 0xc3, 0xb2, 0xa1}) || bytes.HasPrefix(p, []byte{0x4d, 0x3c, 0xb2, 0xa1})) {
		t.Errorf("bundle %s: the tcpdump capture is no pcap with packets (%d bytes)", b.name, len(p))
	}
	// trace.dat compresses its sections: trace-cmd report reads it (the tool aod's bundles are
	// read with); the slow requests' completions are among its events.
	if d := member("trace-cmd"); !bytes.HasPrefix(d, []byte("\x17\x08\x44tracing")) {
		t.Errorf("bundle %s: the trace-cmd capture is no trace.dat (%d bytes)", b.name, len(d))
	} else if n := traceEvents(t, d, "smb3_cmd_done"); n == 0 {
		t.Errorf("bundle %s: the trace-cmd capture holds no smb3_cmd_done event", b.name)
	}
	k.note(t, "the .deb under systemd as PID 1: %d anomaly bundles, actions %v, all ok", len(a.bundles), slices.Sorted(maps.Keys(ran)))
	// reload: the same process, still active.
	if read("reload.exit") != "0" || read("reload.pid") != read("run.pid") || read("reload.state") != "enabled active" {
		t.Errorf("systemctl reload: exit %s, pid %s after (%s before), unit %q", read("reload.exit"), read("reload.pid"), read("run.pid"), read("reload.state"))
	}
	// stop: ended by SIGTERM within TimeoutStopSec (else systemd says "timeout"), with the
	// shutdown bundle.
	if read("stop.exit") != "0" || read("stop.result") != "success" {
		t.Errorf("systemctl stop: exit %s, result %q (took %s s)", read("stop.exit"), read("stop.result"), read("stop.seconds"))
	}
	checkShutdownBundle(t, a)
	// upgrade: restarted on the new version, the edited configuration kept as it was.
	if read("upgrade.exit") != "0" || read("upgrade.state") != "enabled active" || read("upgrade.pid-after") == read("upgrade.pid-before") {
		t.Errorf("dpkg -i of the upgrade: exit %s, unit %q, pid %s -> %s (want a restart)\n%s", read("upgrade.exit"), read("upgrade.state"), read("upgrade.pid-before"), read("upgrade.pid-after"), read("upgrade.log"))
	}
	if v := read("upgrade.version"); v != debs.upgraded+"-1" {
		t.Errorf("version after the upgrade %q, want %s-1", v, debs.upgraded)
	}
	if tail := read("upgrade.config-tail"); tail != "# kept across the upgrade" {
		t.Errorf("the upgrade did not keep the edited /etc/aod/aod.yaml: it ends %q", tail)
	}
	if etc := read("upgrade.etc"); etc != "aod.yaml" {
		t.Errorf("/etc/aod after the upgrade holds %q, want aod.yaml alone", etc)
	}
	// security: recorded.
	m := exposure.FindStringSubmatch(read("security.txt"))
	if m == nil {
		t.Errorf("systemd-analyze security printed no exposure level:\n%s", read("security.txt"))
		return
	}
	k.note(t, "systemd-analyze security aod.service: exposure %s %s; stop took %s s", m[1], m[2], read("stop.seconds"))
}

// traceEvents counts the events named event in a trace.dat, as trace-cmd report prints them.
func traceEvents(t *testing.T, dat []byte, event string) int {
	t.Helper()
	file := filepath.Join(t.TempDir(), "trace.dat")
	if err := os.WriteFile(file, dat, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("trace-cmd", "report", "-i", file).Output()
	if err != nil {
		t.Errorf("trace-cmd report of the capture: %v", err)
		return 0
	}
	return bytes.Count(out, []byte(" "+event+":"))
}
