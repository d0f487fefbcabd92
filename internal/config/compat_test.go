package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linuxdiag/aod/internal/errno"
)

// compatCase is a file AODv2 accepted but ignored or misread part of: it loads, with
// a warning on the line marked "# <-" at path whose message holds want, and check
// says what went wrong with the loaded configuration ("" when nothing).
type compatCase struct {
	name, yaml, path, want string
	check                  func(*Config) string
}

func latencyOf(c *Config) *LatencyAnomaly { return c.Anomalies.SMB.Latency }

func smbErrorRule(c *Config) ErrorRule { return c.Anomalies.SMB.Error.Rules[0] }

var compatCases = []compatCase{
	{"relative aod_output_dir: against the working directory", "aod_output_dir: var/log/aod # <-\n",
		"aod_output_dir", "read against the working directory as AODv2 did",
		func(c *Config) string {
			wd, err := os.Getwd()
			if err != nil {
				return err.Error()
			}
			return wantEqual(c.OutputDir, filepath.Join(wd, "var/log/aod"))
		}},
	{"key given twice: the last wins", "watch_interval_sec: 5\nwatch_interval_sec: 6 # <-\n",
		"watch_interval_sec", "already set on line 1; this later value is used",
		func(c *Config) string { return wantEqual(c.WatchInterval, 6*time.Second) }},
	{"action given twice keeps its first place", "anomalies:\n  smb:\n    sockconn:\n      actions:\n        dmesg:\n        stats:\n        dmesg: # <-\n",
		"anomalies.smb.sockconn.actions.dmesg", "already set on line 5",
		func(c *Config) string {
			return wantEqual(namesOf(c.Anomalies.SMB.Sockconn.Actions), []string{"dmesg", "stats"})
		}},
	{"fractional acceptable_count", "anomalies:\n  smb:\n    latency:\n      acceptable_count: 2.5 # <-\n",
		"anomalies.smb.latency.acceptable_count", "AODv2 fired once 3 events were counted",
		func(c *Config) string { return wantEqual(latencyOf(c).AcceptableCount, 3) }},
	{"zero acceptable_count", "anomalies:\n  smb:\n    latency:\n      acceptable_count: 0 # <-\n",
		"anomalies.smb.latency.acceptable_count", "aod uses 1",
		func(c *Config) string { return wantEqual(latencyOf(c).AcceptableCount, 1) }},
	{"huge acceptable_count", "anomalies:\n  smb:\n    latency:\n      acceptable_count: 5000000 # <-\n",
		"anomalies.smb.latency.acceptable_count", "aod uses 1048576",
		func(c *Config) string { return wantEqual(latencyOf(c).AcceptableCount, 1<<20) }},
	{"command tracked twice: the later threshold", "anomalies:\n  smb:\n    latency:\n      acceptable_count: 1\n      track_commands:\n        - {command: SMB2_READ, threshold: 5}\n        - {command: SMB2_WRITE, threshold: 6}\n        - {command: READ, threshold: 7} # <-\n",
		"anomalies.smb.latency.track_commands[2].command", "SMB2_READ is already in track_commands on line 6: this later entry's threshold (7ms) is used",
		func(c *Config) string {
			return wantEqual(latencyOf(c).TrackCommands, []CommandThreshold{{"SMB2_READ", 7 * time.Millisecond}, {"SMB2_WRITE", 6 * time.Millisecond}})
		}},
	{"command excluded twice", "anomalies:\n  smb:\n    latency:\n      acceptable_count: 1\n      exclude_commands:\n        - SMB2_ECHO\n        - SMB2_ECHO # <-\n",
		"anomalies.smb.latency.exclude_commands[1]", "SMB2_ECHO is already listed on line 6",
		func(c *Config) string { return wantEqual(latencyOf(c).ExcludeCommands, []string{"SMB2_ECHO"}) }},
	{"exclude_commands in trackonly, unchecked", "anomalies:\n  smb:\n    latency:\n      mode: trackonly\n      acceptable_count: 1\n      track_commands: [{command: SMB2_READ}]\n      exclude_commands: [SMB2_WRITE, NOT_A_COMMAND] # <-\n",
		"anomalies.smb.latency.exclude_commands", "ignored in mode trackonly",
		func(c *Config) string {
			return wantEqual([]any{latencyOf(c).ExcludeCommands == nil, len(latencyOf(c).TrackCommands)}, []any{true, 1})
		}},
	{"track_commands in excludeonly, unchecked", "anomalies:\n  smb:\n    latency:\n      mode: excludeonly\n      acceptable_count: 1\n      track_commands: [{command: SMB2_READ, threshold: -1}] # <-\n      exclude_commands: [SMB2_ECHO]\n",
		"anomalies.smb.latency.track_commands", "ignored in mode excludeonly",
		func(c *Config) string {
			return wantEqual([]any{latencyOf(c).TrackCommands == nil, latencyOf(c).ExcludeCommands}, []any{true, []string{"SMB2_ECHO"}})
		}},
	{"error listed twice via alias", "anomalies:\n  smb:\n    error:\n      acceptable_count: 1\n      track_errors:\n        - STATUS_ABANDONED\n        - STATUS_ABANDONED_WAIT_0 # <-\n",
		"anomalies.smb.error.track_errors[1]", "STATUS_ABANDONED is already listed on line 6",
		func(c *Config) string { return wantEqual(smbErrorRule(c).TrackErrors, []string{"STATUS_ABANDONED"}) }},
	{"a key of another anomaly type", "anomalies:\n  smb:\n    sockconn:\n      default_threshold_ms: 5 # <-\n      mode: all\n",
		"anomalies.smb.sockconn.default_threshold_ms", "did not use this key in a sockconn anomaly",
		func(c *Config) string { return wantEqual(c.Anomalies.SMB.Sockconn.AcceptableCount, 1) }},
	{"mode in an error anomaly", "anomalies:\n  nfs:\n    error:\n      mode: trackonly # <-\n      track_errors: [NFS4ERR_STALE]\n",
		"anomalies.nfs.error.mode", "did not use this key in a error anomaly",
		func(c *Config) string {
			return wantEqual(c.Anomalies.NFS.Error.Rules, []ErrorRule{{Name: LegacyRuleName, AcceptableCount: 1, TrackErrors: []string{"NFS4ERR_STALE"}}})
		}},
	{"zero cleanup interval", "cleanup:\n  cleanup_interval_sec: 0 # <-\n",
		"cleanup.cleanup_interval_sec", "aod runs it every second",
		func(c *Config) string { return wantEqual(c.Cleanup.Interval, time.Second) }},
	{"zero watch interval", "watch_interval_sec: 0 # <-\n",
		"watch_interval_sec", "aod uses the shortest window",
		func(c *Config) string { return wantEqual(c.WatchInterval, time.Millisecond) }},
	{"negative log age", "cleanup:\n  max_log_age_days: -1 # <-\n",
		"cleanup.max_log_age_days", "AODv2 deleted every bundle at each cleanup: got -1; aod reads it as no age limit",
		func(c *Config) string { return wantEqual(c.Cleanup.MaxAge, time.Duration(0)) }},
	{"zero total size", "cleanup:\n  max_total_log_size_mb: 0 # <-\n",
		"cleanup.max_total_log_size_mb", "aod reads it as no size limit",
		func(c *Config) string { return wantEqual(c.Cleanup.MaxTotalSize, int64(0)) }},
	{"log age above aod's limit", "cleanup:\n  max_log_age_days: 10000 # <-\n",
		"cleanup.max_log_age_days", "aod uses 3650",
		func(c *Config) string { return wantEqual(c.Cleanup.MaxAge, 3650*24*time.Hour) }},
	{"cleanup.aod_output_dir elsewhere", "aod_output_dir: /srv/aod\ncleanup:\n  aod_output_dir: /var/log/aod # <-\n",
		"cleanup.aod_output_dir", "aod ignores this key and prunes its bundles in aod_output_dir (/srv/aod)",
		func(c *Config) string { return wantEqual(c.OutputDir, "/srv/aod") }},
	{"protocol and type given twice through case", "anomalies:\n  smb:\n    sockconn: {acceptable_count: 2}\n  SMB: # <-\n    Sockconn: {acceptable_count: 3}\n",
		"anomalies.smb", `"smb" is already set on line 2`,
		func(c *Config) string { return wantEqual(c.Anomalies.SMB.Sockconn.AcceptableCount, 3) }},

	// capture arguments AODv2 passed to the tool
	{"tcpdump -G", "anomalies:\n  smb:\n    sockconn:\n      actions:\n        tcpdump:\n          - -C2\n          - -nG # <-\n          - 60\n          - -W3\n",
		"anomalies.smb.sockconn.actions.tcpdump[1]", "with -C it ignores -W: got [-nG, 60], which AODv2 passed to tcpdump; aod leaves it out and runs [-C2, -n, -W3]",
		func(c *Config) string {
			return wantEqual(c.Anomalies.SMB.Sockconn.Actions[0].Args, []string{"-C2", "-n", "-W3"})
		}},
	{"tcpdump long option prefix", "anomalies:\n  smb:\n    sockconn:\n      actions:\n        tcpdump:\n          - -C2\n          - -W3\n          - --relinquish=nobody # <-\n          - host\n          - srv\n",
		"anomalies.smb.sockconn.actions.tcpdump[2]", "reserved option --relinquish (-Z)",
		func(c *Config) string {
			return wantEqual(c.Anomalies.SMB.Sockconn.Actions[0].Args, []string{"-C2", "-W3", "host", "srv"})
		}},
	{"two reserved options in one cluster", "anomalies:\n  smb:\n    sockconn:\n      actions:\n        tcpdump: [-C, 2, -W, 3, -DSc100] # <-\n",
		"anomalies.smb.sockconn.actions.tcpdump[4]", "reserved option -c",
		func(c *Config) string {
			return wantEqual(c.Anomalies.SMB.Sockconn.Actions[0].Args, []string{"-C", "2", "-W", "3", "-S"})
		}},
	{"tcpdump -C without value", "anomalies:\n  smb:\n    sockconn:\n      actions:\n        tcpdump: [-C, 2, -W, 3, -s] # <-\n",
		"anomalies.smb.sockconn.actions.tcpdump[4]", "option -s needs a value, and nothing follows it",
		func(c *Config) string {
			return wantEqual(c.Anomalies.SMB.Sockconn.Actions[0].Args, []string{"-C", "2", "-W", "3"})
		}},
	{"trace-cmd command", "anomalies:\n  nfs:\n    sockconn:\n      actions:\n        trace-cmd:\n          - -e\n          - nfs\n          - sleep # <-\n          - 10\n",
		"anomalies.nfs.sockconn.actions.trace-cmd[2]", "not an option: the arguments follow `trace-cmd start",
		func(c *Config) string {
			return wantEqual(c.Anomalies.NFS.Sockconn.Actions[0].Args, []string{"-e", "nfs"})
		}},
	{"trace-cmd long option value", "anomalies:\n  nfs:\n    sockconn:\n      actions:\n        trace-cmd: [-e, nfs, --module] # <-\n",
		"anomalies.nfs.sockconn.actions.trace-cmd[2]", "option --module needs a value",
		func(c *Config) string {
			return wantEqual(c.Anomalies.NFS.Sockconn.Actions[0].Args, []string{"-e", "nfs"})
		}},

	// the 2025 form
	{"2025 error excludeonly: every errno but the excluded", "guardian:\n  anomalies:\n    error:\n      type: Error\n      mode: excludeonly\n      acceptable_count: 1\n      track_codes: [EIO] # <-\n      exclude_codes: [ENOENT, ENODATA]\n",
		"guardian.anomalies.error.track_codes", "ignored in mode excludeonly",
		func(c *Config) string {
			return wantEqual(smbErrorRule(c).TrackErrors, everyErrnoBut([]string{"ENOENT", "ENODATA"}))
		}},
	{"2025 error without mode means trackonly", "guardian:\n  anomalies:\n    error:\n      type: Error\n      acceptable_count: 1\n      track_codes: [EIO] # <-\n",
		"guardian.anomalies.error.track_codes", "aod reads mode trackonly",
		func(c *Config) string { return wantEqual(smbErrorRule(c).TrackErrors, []string{"EIO"}) }},
	{"2025 error trackonly ignores exclude_codes", "guardian:\n  anomalies:\n    error:\n      type: Error\n      mode: trackonly\n      acceptable_count: 1\n      track_codes: [EIO]\n      exclude_codes: [ENOENT] # <-\n",
		"guardian.anomalies.error.exclude_codes", "ignored in mode trackonly",
		func(c *Config) string { return wantEqual(smbErrorRule(c).TrackErrors, []string{"EIO"}) }},
	{"2025 error track_commands", "guardian:\n  anomalies:\n    error:\n      type: Error\n      mode: trackonly\n      acceptable_count: 1\n      track_codes: [EIO]\n      track_commands: [SMB2_READ] # <-\n",
		"guardian.anomalies.error.track_commands", "AODv2 did not use track_commands in a 2025 error anomaly",
		func(c *Config) string { return wantEqual(smbErrorRule(c).TrackCommands, []string{"SMB2_READ"}) }},
	{"2025 unknown tool", "guardian:\n  anomalies:\n    slow:\n      type: Latency\n      tool: smbslowr # <-\n      acceptable_count: 1\n",
		"guardian.anomalies.slow.tool", `got "smbslowr" (did you mean "smbslower"?); AODv2 started no tool for it, so the anomaly never fired, and aod skips it`,
		func(c *Config) string { return wantEqual(c.Anomalies.SMB.Types(), []string(nil)) }},
	{"2025 two latency anomalies: the last", "guardian:\n  anomalies:\n    a: # <-\n      type: Latency\n      acceptable_count: 1\n      default_threshold_ms: -5\n    b:\n      type: latency\n      acceptable_count: 2\n",
		"guardian.anomalies.a", `ignored: a later smb latency anomaly, "b" on line 7, replaces it`,
		func(c *Config) string { return wantEqual(latencyOf(c).AcceptableCount, 2) }},
	{"2025 mode in capitals", "guardian:\n  anomalies:\n    slow:\n      type: Latency\n      mode: TrackOnly # <-\n      acceptable_count: 1\n      track_commands: [{command: SMB2_READ}]\n",
		"guardian.anomalies.slow.mode", "AODv2 read as all; aod reads it as trackonly",
		func(c *Config) string { return wantEqual(latencyOf(c).Mode, ModeTrackOnly) }},
	{"2025 unknown mode", "guardian:\n  anomalies:\n    slow:\n      type: Latency\n      mode: sometimes # <-\n      acceptable_count: 1\n",
		"guardian.anomalies.slow.mode", "AODv2 read as all; aod does too",
		func(c *Config) string { return wantEqual(latencyOf(c).Mode, ModeAll) }},
	{"2025 capture in an action list", "guardian:\n  anomalies:\n    error:\n      type: Error\n      mode: trackonly\n      acceptable_count: 1\n      track_codes: [EIO]\n      actions:\n        - tcpdump # <-\n        - dmesg\n",
		"guardian.anomalies.error.actions[0]", "skipped, as AODv2 did: tcpdump needs arguments",
		func(c *Config) string { return wantEqual(namesOf(c.Anomalies.SMB.Error.Actions), []string{"dmesg"}) }},
	{"2025 unknown action", "guardian:\n  anomalies:\n    error:\n      type: Error\n      mode: trackonly\n      acceptable_count: 1\n      track_codes: [EIO]\n      actions: [dmsg, stats] # <-\n",
		"guardian.anomalies.error.actions[0]", `unknown action, skipped as AODv2 did: got "dmsg" (did you mean "dmesg"?)`,
		func(c *Config) string { return wantEqual(namesOf(c.Anomalies.SMB.Error.Actions), []string{"stats"}) }},
	{"2025 action listed twice", "guardian:\n  anomalies:\n    error:\n      type: Error\n      mode: trackonly\n      acceptable_count: 1\n      track_codes: [EIO]\n      actions:\n        - dmesg\n        - dmesg # <-\n",
		"guardian.anomalies.error.actions[1]", "dmesg is already listed on line 9: it runs once",
		func(c *Config) string { return wantEqual(namesOf(c.Anomalies.SMB.Error.Actions), []string{"dmesg"}) }},
}

// wantEqual returns "" when got equals w, else a message saying both.
func wantEqual[T any](got, w T) string {
	if fmt.Sprint(got) == fmt.Sprint(w) {
		return ""
	}
	return fmt.Sprintf("got %v, want %v", got, w)
}

func TestAODv2MisreadsLoadWithAWarning(t *testing.T) {
	for _, c := range compatCases {
		t.Run(c.name, func(t *testing.T) {
			line := markedLine(t, c.yaml)
			cfg, warns, err := Parse("compat.yaml", []byte(c.yaml))
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			found := false
			for _, w := range warns {
				if w.Line == line && w.Path == c.path && strings.Contains(w.Message, c.want) && w.Column > 0 {
					found = true
				}
			}
			if !found {
				t.Errorf("no warning at line %d, path %q, with %q; got %v", line, c.path, c.want, warns)
			}
			if msg := c.check(cfg); msg != "" {
				t.Error(msg)
			}
		})
	}
}

// TestAODv2ReadsAsMeant: files AODv2 read as their author meant load with that
// meaning and no warning.
func TestAODv2ReadsAsMeant(t *testing.T) {
	cases := []struct {
		name, yaml string
		check      func(*Config) string
	}{
		{"threshold 0 counts every request", "anomalies:\n  smb:\n    latency:\n      acceptable_count: 10\n      default_threshold_ms: 20\n      track_commands:\n        - command: SMB2_WRITE\n          threshold: 0\n",
			func(c *Config) string {
				return wantEqual(latencyOf(c).TrackCommands, []CommandThreshold{{"SMB2_WRITE", 0}})
			}},
		{"default_threshold_ms 0", "anomalies:\n  smb:\n    latency:\n      acceptable_count: 1\n      default_threshold_ms: 0\n      track_commands: [{command: SMB2_READ}]\n",
			func(c *Config) string {
				return wantEqual([]any{latencyOf(c).DefaultThreshold, latencyOf(c).TrackCommands}, []any{time.Duration(0), []CommandThreshold{{"SMB2_READ", 0}}})
			}},
		{"acceptable_count left out", "anomalies:\n  smb:\n    latency:\n      tool: smbslower\n    error:\n      track_errors: [EIO]\n",
			func(c *Config) string {
				return wantEqual([]int{latencyOf(c).AcceptableCount, smbErrorRule(c).AcceptableCount}, []int{1, 1})
			}},
		{"server-to-client notification", "anomalies:\n  smb:\n    latency:\n      mode: trackonly\n      track_commands: [{command: SMB2_SERVER_TO_CLIENT_NOTIFICATION, threshold: 5}]\n",
			func(c *Config) string {
				return wantEqual(latencyOf(c).TrackCommands, []CommandThreshold{{"SMB2_SERVER_TO_CLIENT_NOTIFICATION", 5 * time.Millisecond}})
			}},
		{"protocol and type in capitals", "anomalies:\n  SMB:\n    Latency:\n      acceptable_count: 2\n  ' Nfs ':\n    SOCKCONN:\n      tool: ss\n",
			func(c *Config) string {
				return wantEqual([]any{latencyOf(c) != nil && latencyOf(c).AcceptableCount == 2, c.Anomalies.NFS.Types()}, []any{true, []string{"sockconn"}})
			}},
		{"seconds-scale log age of the soak test", "cleanup:\n  max_log_age_days: 0.00034722222222222224\n  cleanup_interval_sec: 1\n",
			func(c *Config) string { return wantEqual(c.Cleanup.MaxAge, 30*time.Second) }},
		{"cleanup.aod_output_dir where bundles go", "aod_output_dir: /srv/aod\ncleanup:\n  aod_output_dir: /srv/aod/\n",
			func(c *Config) string { return wantEqual(c.OutputDir, "/srv/aod") }},
		{"quick actions with an empty list or mapping", "anomalies:\n  smb:\n    sockconn:\n      actions:\n        dmesg: []\n        stats: {}\n        mounts:\n",
			func(c *Config) string {
				return wantEqual(namesOf(c.Anomalies.SMB.Sockconn.Actions), []string{"dmesg", "stats", "mounts"})
			}},
		{"YAML 1.1 booleans", "guardian:\n  anomalies: {}\naudit:\n  enabled: yes\ntelemetry:\n  otlp:\n    tls: {insecure: on}\n",
			func(c *Config) string { return wantEqual(c.Telemetry.OTLP.TLS.Insecure, true) }},
		{"2025 error mode all: every errno", "guardian:\n  anomalies:\n    error:\n      type: Error\n      mode: all\n      acceptable_count: 2\n",
			func(c *Config) string {
				r := smbErrorRule(c)
				if len(r.TrackErrors) < 100 || !slices.Contains(r.TrackErrors, "EIO") || !slices.Contains(r.TrackErrors, "EHWPOISON") {
					return fmt.Sprintf("track_errors = %v, want every errno", r.TrackErrors)
				}
				for _, n := range r.TrackErrors {
					if _, ok := errno.Lookup(n); !ok {
						return "not an errno: " + n
					}
				}
				return ""
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := c.yaml
			if strings.HasPrefix(src, "guardian:") {
				// the 2025 form's one warning is expected; nothing else
				src = "watcher: {actions: []}\n" + src
			}
			cfg, warns, err := Parse("meant.yaml", []byte(src))
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if n := len(warns); n > 1 || n == 1 && !strings.HasPrefix(src, "watcher:") {
				t.Errorf("warnings: %v", warns)
			}
			if msg := c.check(cfg); msg != "" {
				t.Error(msg)
			}
		})
	}
}
