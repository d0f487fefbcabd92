package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linuxdiag/aod/internal/fixtures"
)

// aodv2Files are the configuration files AODv2's own tests run with
// (testdata/aodv2/tests), each with the meaning AODv2 gives it.
var aodv2Files = map[string]func(t *testing.T, c *Config){
	"integration.yaml": func(t *testing.T, c *Config) {
		expect(t, "watch interval", c.WatchInterval, time.Second)
		expect(t, "output dir", c.OutputDir, "/tmp/aodv2_it_x")
		l := c.Anomalies.SMB.Latency
		expect(t, "smb latency", []any{l.Mode, l.AcceptableCount, l.DefaultThreshold}, []any{ModeAll, 10, 20 * time.Millisecond})
		// threshold: 0: every SMB2_WRITE counts; every other command at 20 ms.
		expect(t, "track_commands", l.TrackCommands, []CommandThreshold{{"SMB2_WRITE", 0}})
		expect(t, "smb latency actions", namesOf(l.Actions), []string{"dmesg", "journalctl", "debugdata", "stats", "mounts", "smbinfo", "syslogs", "tcpdump"})
		expect(t, "tcpdump args", l.Actions[7].Args, []string{"-s", "65536", "-C", "1", "-W", "2"})
		expect(t, "smb sockconn", []any{c.Anomalies.SMB.Sockconn.AcceptableCount, namesOf(c.Anomalies.SMB.Sockconn.Actions)}, []any{1, []string{"dmesg", "journalctl", "stats", "tcpdump"}})
		nfs := c.Anomalies.NFS
		expect(t, "nfs latency", []any{nfs.Latency.AcceptableCount, nfs.Latency.DefaultThreshold, namesOf(nfs.Latency.Actions)}, []any{10, 50 * time.Millisecond, []string{"dmesg", "journalctl", "syslogs", "mounts", "trace-cmd"}})
		expect(t, "nfs error", nfs.Error.Rules, []ErrorRule{{Name: LegacyRuleName, AcceptableCount: 5, TrackErrors: []string{"NFS4ERR_BAD_STATEID", "NFS4ERR_OLD_STATEID"}}})
		expect(t, "nfs sockconn", namesOf(nfs.Sockconn.Actions), []string{"dmesg"})
		expect(t, "cleanup", c.Cleanup, Cleanup{Interval: time.Minute, MaxAge: 48 * time.Hour, MaxTotalSize: 50 << 20})
	},
	"logcollector-one-long-capture-per-protocol.yaml": func(t *testing.T, c *Config) {
		smb := c.Anomalies.SMB
		expect(t, "types", smb.Types(), []string{"latency", "sockconn"})
		expect(t, "latency", []any{smb.Latency.AcceptableCount, smb.Latency.DefaultThreshold, smb.Latency.TrackCommands}, []any{10, 20 * time.Millisecond, []CommandThreshold(nil)})
		for _, a := range [][]Action{smb.Latency.Actions, smb.Sockconn.Actions} {
			expect(t, "actions", a, []Action{{Name: "mounts"}, {Name: "tcpdump", Args: []string{"-C", "1", "-W", "2"}}})
		}
		expect(t, "cleanup", c.Cleanup, Cleanup{Interval: time.Minute, MaxAge: 48 * time.Hour, MaxTotalSize: 50 << 20})
	},
	"logcollector-all-handlers-dedup.yaml": func(t *testing.T, c *Config) {
		smb := c.Anomalies.SMB
		expect(t, "actions", []any{namesOf(smb.Latency.Actions), namesOf(smb.Sockconn.Actions)}, []any{[]string{"mounts", "journalctl"}, []string{"mounts", "dmesg"}})
		expect(t, "output dir", c.OutputDir, "/tmp/aodv2_lc_dedup_x")
	},
	"logcollector-e2e-multiple-events.yaml": func(t *testing.T, c *Config) {
		expect(t, "smb", c.Anomalies.SMB.Types(), []string(nil))
		e := c.Anomalies.NFS.Error
		expect(t, "nfs error", []any{e.Tool, e.Rules, namesOf(e.Actions)}, []any{"nfsiosnoop", []ErrorRule{{Name: LegacyRuleName, AcceptableCount: 5, TrackErrors: []string{"NFS4ERR_BAD_STATEID"}}}, []string{"mounts", "journalctl"}})
	},
	"logcollector-e2e-snapshot-fans-out.yaml": func(t *testing.T, c *Config) {
		expect(t, "smb", c.Anomalies.SMB.Types(), []string{"latency", "sockconn"})
		expect(t, "nfs", c.Anomalies.NFS.Types(), []string{"latency", "error"})
		expect(t, "nfs latency", []any{c.Anomalies.NFS.Latency.DefaultThreshold, namesOf(c.Anomalies.NFS.Latency.Actions)}, []any{50 * time.Millisecond, []string{"mounts", "journalctl"}})
		expect(t, "nfs error actions", namesOf(c.Anomalies.NFS.Error.Actions), []string{"mounts", "dmesg"})
	},
	"logcollector-e2e-shared-capture-process.yaml": func(t *testing.T, c *Config) {
		smb := c.Anomalies.SMB
		expect(t, "types", smb.Types(), []string{"latency", "sockconn"})
		for _, a := range [][]Action{smb.Latency.Actions, smb.Sockconn.Actions} {
			i := slices.IndexFunc(a, Action.IsCapture)
			if i < 0 {
				t.Fatalf("no capture in %v", a)
			}
			expect(t, "tcpdump", a[i], Action{Name: "tcpdump", Args: []string{"-C", "1", "-W", "2"}})
		}
	},
	"logcollector-e2e-shared-trace-cmd-capture.yaml": func(t *testing.T, c *Config) {
		nfs := c.Anomalies.NFS
		for _, a := range [][]Action{nfs.Latency.Actions, nfs.Error.Actions} {
			expect(t, "actions", a, []Action{{Name: "mounts"}, {Name: "trace-cmd", Args: []string{"-e", "nfs", "-b", "1024"}}})
		}
	},
	"soak-100MB_1s.yaml":  soak(time.Second, 30*time.Second, 100),
	"soak-500MB_10s.yaml": soak(10*time.Second, 30*time.Second, 500),
	"soak-500MB_60s.yaml": soak(time.Minute, 2*time.Minute, 500),
	"soak-1GB_120s.yaml":  soak(2*time.Minute, 30*time.Second, 1024),
	"soak-2GB_300s.yaml":  soak(5*time.Minute, 2*time.Minute, 2048),
}

// soak checks a soak scenario: its retention at the seconds scale the test drives it.
func soak(interval, age time.Duration, mb int64) func(t *testing.T, c *Config) {
	return func(t *testing.T, c *Config) {
		expect(t, "cleanup", c.Cleanup, Cleanup{Interval: interval, MaxAge: age, MaxTotalSize: mb << 20})
		if !strings.HasPrefix(c.OutputDir, "/tmp/aod_soak_x/") {
			t.Errorf("output dir %q", c.OutputDir)
		}
	}
}

func expect[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if msg := wantEqual(got, want); msg != "" {
		t.Errorf("%s: %s", what, msg)
	}
}

func TestAODv2TestFilesLoadWithTheirMeaning(t *testing.T) {
	dir := fixtures.Path("aodv2/tests")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := aodv2Files[e.Name()]; !ok {
			t.Errorf("%s has no case in aodv2Files", e.Name())
		}
	}
	for name, check := range aodv2Files {
		t.Run(name, func(t *testing.T) {
			cfg, warns, err := Load(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if len(warns) != 0 {
				t.Errorf("warnings: %v", warns)
			}
			check(t, cfg)
		})
	}
}
