package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// badCase is an invalid configuration. The line the error must point at carries the
// marker "# <-"; path is the key path the error must name; allowed must appear in the
// message after "allowed:", and want (if set) anywhere in it.
type badCase struct {
	name, yaml, path, allowed, want string
}

// markedLine returns the 1-based line holding "# <-".
func markedLine(t *testing.T, yaml string) int {
	t.Helper()
	for i, l := range strings.Split(yaml, "\n") {
		if strings.Contains(l, "# <-") {
			return i + 1
		}
	}
	t.Fatal("case has no # <- marker")
	return 0
}

const tcpArgs = `["-s", "65536", "-C", "2", "-W", "100"]`

var badCases = []badCase{
	// workloads
	{"workloads key misspelt", "workloads:\n  pod_logs_dir: /x # <-\n",
		"workloads.pod_logs_dir", "cgroup_root, pod_log_dir, container_log_dir, metric_attributes", `did you mean "pod_log_dir"?`},
	{"metric_attributes not a boolean", "workloads:\n  metric_attributes: pods # <-\n",
		"workloads.metric_attributes", "true or false", ""},
	// top level
	{"unknown top-level key", "watch_intervl_sec: 5 # <-\n",
		"watch_intervl_sec", "watch_interval_sec, aod_output_dir", `did you mean "watch_interval_sec"?`},
	{"document is a list", "- a # <-\n- b\n",
		"", "a mapping with the keys watch_interval_sec", "got a list"},
	{"interval as quoted string", `watch_interval_sec: "10" # <-` + "\n",
		"watch_interval_sec", "a number of seconds >= 0", `got a string ("10")`},
	{"interval as bool", "watch_interval_sec: true # <-\n",
		"watch_interval_sec", "a number of seconds", "got a boolean (true)"},
	{"negative interval", "watch_interval_sec: -1 # <-\n",
		"watch_interval_sec", "a number of seconds >= 0", "out of range: got -1"},
	{"NaN interval", "watch_interval_sec: .nan # <-\n",
		"watch_interval_sec", "a number of seconds", "not a finite number"},
	{"output dir as number", "aod_output_dir: 5 # <-\n",
		"aod_output_dir", "an absolute path", "got an integer (5)"},

	// anomalies: structure
	{"unknown protocol", "anomalies:\n  cifs: # <-\n    latency: {}\n",
		"anomalies.cifs", "smb, nfs, io", ""},
	{"misspelt anomaly type", "anomalies:\n  smb:\n    latncy: # <-\n      acceptable_count: 1\n",
		"anomalies.smb.latncy", "latency, error, sockconn", `did you mean "latency"?`},
	{"io has no sockconn", "anomalies:\n  io:\n    sockconn: # <-\n      tool: ss\n",
		"anomalies.io.sockconn", "latency, error", ""},
	{"wrong tool for smb latency", "anomalies:\n  smb:\n    latency:\n      tool: nfsslower # <-\n      acceptable_count: 1\n",
		"anomalies.smb.latency.tool", "smbslower", "unknown tool for smb latency"},
	{"unknown latency key", "anomalies:\n  smb:\n    latency:\n      acceptable_count: 1\n      track_command: [] # <-\n",
		"anomalies.smb.latency.track_command", "track_commands, exclude_commands", `did you mean "track_commands"?`},

	// latency values
	{"unknown mode", "anomalies:\n  smb:\n    latency:\n      mode: fast # <-\n      acceptable_count: 1\n",
		"anomalies.smb.latency.mode", "all, trackonly, excludeonly", `got "fast"`},
	{"acceptable_count as string", "anomalies:\n  smb:\n    latency:\n      acceptable_count: \"10\" # <-\n",
		"anomalies.smb.latency.acceptable_count", "a number", "wrong type"},
	{"negative threshold", "anomalies:\n  smb:\n    latency:\n      acceptable_count: 1\n      default_threshold_ms: -5 # <-\n",
		"anomalies.smb.latency.default_threshold_ms", "a number of milliseconds >= 0", "out of range: got -5"},
	{"NaN threshold", "anomalies:\n  smb:\n    latency:\n      acceptable_count: 1\n      default_threshold_ms: .NaN # <-\n",
		"anomalies.smb.latency.default_threshold_ms", "a number of milliseconds", "not a finite number"},
	{"infinite threshold", "anomalies:\n  smb:\n    latency:\n      acceptable_count: 1\n      default_threshold_ms: .inf # <-\n",
		"anomalies.smb.latency.default_threshold_ms", "a number of milliseconds", "not a finite number"},
	{"non-numeric threshold", "anomalies:\n  smb:\n    latency:\n      acceptable_count: 1\n      default_threshold_ms: fast # <-\n",
		"anomalies.smb.latency.default_threshold_ms", "a number of milliseconds", `got a string ("fast")`},
	{"bool threshold", "anomalies:\n  smb:\n    latency:\n      acceptable_count: 1\n      default_threshold_ms: false # <-\n",
		"anomalies.smb.latency.default_threshold_ms", "a number of milliseconds", "got a boolean (false)"},
	{"negative command threshold", "anomalies:\n  smb:\n    latency:\n      acceptable_count: 1\n      track_commands:\n        - command: SMB2_READ\n          threshold: -1 # <-\n",
		"anomalies.smb.latency.track_commands[0].threshold", "a number of milliseconds >= 0", "out of range"},
	{"unknown command", "anomalies:\n  smb:\n    latency:\n      acceptable_count: 1\n      track_commands:\n        - command: SMB2_WRTE # <-\n",
		"anomalies.smb.latency.track_commands[0].command", "SMB2_NEGOTIATE, SMB2_SESSION_SETUP", `did you mean "SMB2_WRITE"?`},
	{"track command as bare string", "anomalies:\n  smb:\n    latency:\n      acceptable_count: 1\n      track_commands:\n        - SMB2_READ # <-\n",
		"anomalies.smb.latency.track_commands[0]", "a mapping with the keys command, threshold", `got a string ("SMB2_READ")`},
	{"lower-case excluded command", "anomalies:\n  smb:\n    latency:\n      acceptable_count: 1\n      exclude_commands:\n        - smb2_read # <-\n",
		"anomalies.smb.latency.exclude_commands[0]", "SMB2_OPLOCK_BREAK", `did you mean "SMB2_READ"?`},
	{"command tracked and excluded", "anomalies:\n  smb:\n    latency:\n      acceptable_count: 1\n      track_commands:\n        - command: SMB2_WRITE\n      exclude_commands:\n        - SMB2_WRITE # <-\n",
		"anomalies.smb.latency.exclude_commands[0]", "a command in track_commands or in exclude_commands, not both", "also in track_commands (line 6)"},
	{"trackonly tracking nothing", "anomalies:\n  smb:\n    latency: # <-\n      mode: trackonly\n      acceptable_count: 1\n",
		"anomalies.smb.latency", "settings that watch at least one command", "watches no command"},
	{"every command excluded", "anomalies:\n  smb:\n    latency: # <-\n      mode: excludeonly\n      acceptable_count: 1\n      exclude_commands: [NEGOTIATE, SESSION_SETUP, LOGOFF, TREE_CONNECT, TREE_DISCONNECT, CREATE, CLOSE, FLUSH, READ, WRITE, LOCK, IOCTL, CANCEL, ECHO, QUERY_DIRECTORY, CHANGE_NOTIFY, QUERY_INFO, SET_INFO, OPLOCK_BREAK, SERVER_TO_CLIENT_NOTIFICATION]\n",
		"anomalies.smb.latency", "settings that watch at least one command", "all 20 SMB2 commands in exclude_commands"},
	{"unknown NFS procedure", "anomalies:\n  nfs:\n    latency:\n      acceptable_count: 1\n      track_commands:\n        - command: NFSPROC4_CLNT_BOGUS # <-\n",
		"anomalies.nfs.latency.track_commands[0].command", "NFSPROC4_CLNT_READ, NFSPROC4_CLNT_WRITE", "unknown NFS procedure"},
	{"misspelt excluded NFS procedure", "anomalies:\n  nfs:\n    latency:\n      acceptable_count: 1\n      exclude_commands:\n        - NFSPROC4_CLNT_GETATR # <-\n",
		"anomalies.nfs.latency.exclude_commands[0]", "NFS3PROC_GETATTR", `did you mean "NFSPROC4_CLNT_GETATTR"?`},
	{"nfs trackonly tracking nothing", "anomalies:\n  nfs:\n    latency: # <-\n      mode: trackonly\n      acceptable_count: 1\n      track_commands: []\n",
		"anomalies.nfs.latency", "settings that watch at least one command", "watches no command"},

	// error anomalies
	{"legacy error with no axis", "anomalies:\n  smb:\n    error: # <-\n      acceptable_count: 3\n",
		"anomalies.smb.error", "at least one of track_commands, track_errors", "no axis"},
	{"rule with no axis", "anomalies:\n  smb:\n    error:\n      rules:\n        - name: r1 # <-\n          acceptable_count: 1\n          track_errors: []\n",
		"anomalies.smb.error.rules[0]", "at least one of track_commands, track_errors", "no axis"},
	{"duplicate rule names", "anomalies:\n  smb:\n    error:\n      rules:\n        - {name: r1, acceptable_count: 1, track_errors: [EIO]}\n        - {name: r1, acceptable_count: 2, track_errors: [EIO]} # <-\n",
		"anomalies.smb.error.rules[1].name", "a name used by one rule only", `duplicate rule name "r1" (first on line 5)`},
	{"legacy form mixed with rules", "anomalies:\n  smb:\n    error:\n      acceptable_count: 3 # <-\n      rules:\n        - {name: r1, acceptable_count: 1, track_errors: [EIO]}\n",
		"anomalies.smb.error.acceptable_count", "either rules, or acceptable_count/track_commands/track_errors without rules", "cannot be combined with rules (line 5)"},
	{"error anomaly with no rule", "anomalies:\n  smb:\n    error: # <-\n      tool: smbiosnoop\n",
		"anomalies.smb.error", "rules: [{name, acceptable_count, track_commands, track_errors}]", "no rule"},
	{"empty rules", "anomalies:\n  smb:\n    error:\n      rules: [] # <-\n",
		"anomalies.smb.error.rules", "with at least one rule", "no rules"},
	{"rule without name", "anomalies:\n  smb:\n    error:\n      rules:\n        - acceptable_count: 1 # <-\n          track_errors: [EIO]\n",
		"anomalies.smb.error.rules[0].name", "a unique rule name", "missing required key"},
	{"misspelt NTSTATUS", "anomalies:\n  smb:\n    error:\n      acceptable_count: 1\n      track_errors:\n        - STATUS_IO_TIMEOUTT # <-\n",
		"anomalies.smb.error.track_errors[0]", "an NTSTATUS name", `did you mean "STATUS_IO_TIMEOUT"?`},
	{"unknown errno", "anomalies:\n  smb:\n    error:\n      acceptable_count: 1\n      track_errors: [EACCESS] # <-\n",
		"anomalies.smb.error.track_errors[0]", "an errno name", `did you mean "EACCES"?`},
	{"success is no failure", "anomalies:\n  smb:\n    error:\n      acceptable_count: 1\n      track_errors:\n        - STATUS_WAIT_0 # <-\n",
		"anomalies.smb.error.track_errors[0]", "an NTSTATUS name", "not a failure status"},
	{"misspelt NFS status", "anomalies:\n  nfs:\n    error:\n      acceptable_count: 1\n      track_errors:\n        - NFS4ERR_BAD_STATID # <-\n",
		"anomalies.nfs.error.track_errors[0]", "an NFS status name", `did you mean "NFS4ERR_BAD_STATEID"?`},
	{"SMB status in an NFS rule", "anomalies:\n  nfs:\n    error:\n      rules:\n        - {name: r, acceptable_count: 1, track_errors: [STATUS_IO_TIMEOUT]} # <-\n",
		"anomalies.nfs.error.rules[0].track_errors[0]", "an errno name", "unknown error name"},
	{"unknown NFS error command", "anomalies:\n  nfs:\n    error:\n      acceptable_count: 1\n      track_commands: [NFSPROC4_CLNT_BOGUS] # <-\n",
		"anomalies.nfs.error.track_commands[0]", "NFSPROC4_CLNT_READ", "unknown NFS procedure"},
	{"io_filesystems all with others", "detection:\n  io_filesystems: [all, cifs] # <-\n",
		"detection.io_filesystems", "or [all]", "all with other types"},
	{"io_filesystems bad name", "detection:\n  io_filesystems:\n    - \"NFS 4\" # <-\n",
		"detection.io_filesystems[0]", "as /proc/self/mountinfo names them", "not a file system type name"},
	{"io_filesystems empty", "detection:\n  io_filesystems: [] # <-\n",
		"detection.io_filesystems", "or [all]", "no file system"},
	{"unknown io operation", "anomalies:\n  io:\n    error:\n      acceptable_count: 1\n      track_commands: [OPENAT] # <-\n",
		"anomalies.io.error.track_commands[0]", "OPEN, READ, WRITE", `did you mean "OPEN"?`},
	{"lower-case io operation", "anomalies:\n  io:\n    error:\n      rules:\n        - name: r\n          acceptable_count: 1\n          track_commands: [lock_fcntl] # <-\n",
		"anomalies.io.error.rules[0].track_commands[0]", "LOCK_FCNTL", `did you mean "LOCK_FCNTL"?`},
	{"misspelt io errno", "anomalies:\n  io:\n    error:\n      acceptable_count: 1\n      track_errors: [ESTAL] # <-\n",
		"anomalies.io.error.track_errors[0]", "an errno name", `did you mean "ESTALE"?`},
	{"NFS status in an io rule", "anomalies:\n  io:\n    error:\n      acceptable_count: 1\n      track_errors: [NFS4ERR_STALE] # <-\n",
		"anomalies.io.error.track_errors[0]", "an errno name", "unknown error name"},
	{"unknown error command", "anomalies:\n  smb:\n    error:\n      acceptable_count: 1\n      track_commands: [SMB2_OPEN] # <-\n",
		"anomalies.smb.error.track_commands[0]", "SMB2_CREATE", "unknown SMB2 command"},

	// actions
	{"quick action with a value", "anomalies:\n  smb:\n    sockconn:\n      actions:\n        dmesg: true # <-\n",
		"anomalies.smb.sockconn.actions.dmesg", `nothing: write "dmesg:"`, "a quick action takes no value: got true"},
	{"actions as a 2025 list", "anomalies:\n  smb:\n    sockconn:\n      actions:\n        - dmesg # <-\n",
		"anomalies.smb.sockconn.actions", "a mapping of action names", "the AODv2 2025 form"},
	{"unknown action", "anomalies:\n  smb:\n    sockconn:\n      actions:\n        tcpdumpp: [] # <-\n",
		"anomalies.smb.sockconn.actions.tcpdumpp", "dmesg, journalctl", `did you mean "tcpdump"?`},
	{"tcpdump -w", "anomalies:\n  smb:\n    sockconn:\n      actions:\n        tcpdump:\n          - -C\n          - 2\n          - -W\n          - 3\n          - -w # <-\n          - /tmp/x\n",
		"anomalies.smb.sockconn.actions.tcpdump[4]", "without -w or --write-file", "reserved option -w"},
	{"tcpdump --write-file=", "anomalies:\n  smb:\n    sockconn:\n      actions:\n        tcpdump:\n          - -C2\n          - -W3\n          - --write-file=/tmp/x # <-\n",
		"anomalies.smb.sockconn.actions.tcpdump[2]", "without -w or --write-file", "reserved option"},
	{"tcpdump clustered -nw", "anomalies:\n  smb:\n    sockconn:\n      actions:\n        tcpdump:\n          - -C2\n          - -W3\n          - -nw # <-\n          - /tmp/x\n",
		"anomalies.smb.sockconn.actions.tcpdump[2]", "without -w or --write-file", "reserved option -w"},
	{"tcpdump without -W", "anomalies:\n  smb:\n    sockconn:\n      actions:\n        tcpdump: [\"-C\", \"2\"] # <-\n",
		"anomalies.smb.sockconn.actions.tcpdump", "with -C and -W", "missing required option -W"},
	{"tcpdump -C without value", "anomalies:\n  smb:\n    sockconn:\n      actions:\n        tcpdump: # <-\n          - -W\n          - 2\n          - -C\n",
		"anomalies.smb.sockconn.actions.tcpdump", "with -C and -W", "missing required option -C"},
	{"capture args not a list", "anomalies:\n  smb:\n    sockconn:\n      actions:\n        tcpdump: -C 2 -W 3 # <-\n",
		"anomalies.smb.sockconn.actions.tcpdump", "a list of tcpdump arguments", "wrong type"},
	{"trace-cmd -o", "anomalies:\n  nfs:\n    sockconn:\n      actions:\n        trace-cmd:\n          - -e\n          - nfs\n          - -o # <-\n          - /tmp/trace.dat\n",
		"anomalies.nfs.sockconn.actions.trace-cmd[2]", "without -o", "reserved option -o"},
	{"trace-cmd without -e", "anomalies:\n  nfs:\n    sockconn:\n      actions:\n        trace-cmd: [\"-b\", \"1024\"] # <-\n",
		"anomalies.nfs.sockconn.actions.trace-cmd", "with -e", "missing required option -e"},
	{"capture in two protocols", "anomalies:\n  smb:\n    sockconn:\n      actions:\n        tcpdump: " + tcpArgs + "\n  nfs:\n    sockconn:\n      actions:\n        tcpdump: " + tcpArgs + " # <-\n",
		"anomalies.nfs.sockconn.actions.tcpdump", "each capture tool in one protocol only", "already bound to protocol smb"},
	{"capture arguments differ", "anomalies:\n  smb:\n    latency:\n      acceptable_count: 1\n      actions:\n        tcpdump: " + tcpArgs + "\n    sockconn:\n      actions:\n        tcpdump: [\"-C\", \"2\", \"-W\", \"100\"] # <-\n",
		"anomalies.smb.sockconn.actions.tcpdump", "the same arguments for every tcpdump of protocol smb", "arguments differ"},

	// cleanup
	{"total size as word", "cleanup:\n  max_total_log_size_mb: big # <-\n",
		"cleanup.max_total_log_size_mb", "a number of MiB", `got a string ("big")`},
	{"misspelt cleanup key", "cleanup:\n  max_log_age_day: 10 # <-\n",
		"cleanup.max_log_age_day", "cleanup_interval_sec, max_log_age_days, max_total_log_size_mb", "did you mean"},

	// the 2025 form
	{"both forms", "anomalies: {}\nguardian: # <-\n  anomalies: {}\n",
		"guardian", "one form: anomalies: (2026), or watcher:/guardian: (2025)", "got both forms"},
	{"2025 entry without type", "guardian:\n  anomalies:\n    slow: # <-\n      tool: smbslower\n",
		"guardian.anomalies.slow.type", "Latency, Error", "missing required key"},
	{"2025 unknown type", "guardian:\n  anomalies:\n    slow:\n      type: Slow # <-\n",
		"guardian.anomalies.slow.type", "Latency, Error", `got "Slow"`},

	// aod's own sections
	{"unknown OTLP protocol", "telemetry:\n  otlp:\n    protocol: udp # <-\n",
		"telemetry.otlp.protocol", "grpc, http", `got "udp"`},
	{"OTLP endpoint scheme", "telemetry:\n  otlp:\n    endpoint: ftp://collector:4317 # <-\n",
		"telemetry.otlp.endpoint", "an http:// or https:// URL", "not an OTLP endpoint"},
	{"Prometheus address without port", "telemetry:\n  prometheus:\n    listen: localhost # <-\n",
		"telemetry.prometheus.listen", "host:port with a port from 1 to 65535", "not a listen address"},
	{"client cert without key", "telemetry:\n  otlp:\n    tls: # <-\n      cert_file: /etc/aod/cert.pem\n",
		"telemetry.otlp.tls.cert_file", "both set, or neither", "needs both files"},
	{"header value as number", "telemetry:\n  otlp:\n    headers:\n      x-tenant: 5 # <-\n",
		"telemetry.otlp.headers.x-tenant", "a string (quote numbers)", "got an integer (5)"},
	{"negative cooldown", "detection:\n  cooldown_sec: -5 # <-\n",
		"detection.cooldown_sec", "a number of seconds >= 0 and <= 86400", "out of range"},
	{"zero cardinality limit", "telemetry:\n  cardinality_limit: 0 # <-\n",
		"telemetry.cardinality_limit", "an integer >= 1 and <= 1048576", "out of range"},
	{"fractional cardinality limit", "telemetry:\n  cardinality_limit: 2.5 # <-\n",
		"telemetry.cardinality_limit", "an integer >= 1 and <= 1048576", "2.5"},
	{"zstd level too high", "bundle:\n  zstd_level: 30 # <-\n",
		"bundle.zstd_level", "an integer >= 1 and <= 22", "out of range"},
	{"zero concurrency", "collection:\n  concurrency: 0 # <-\n",
		"collection.concurrency", "an integer >= 1 and <= 64", "out of range"},
	{"audit enabled as string", "audit:\n  enabled: \"yes\" # <-\n",
		"audit.enabled", "true or false", `got a string ("yes")`},
}

func TestBadConfigs(t *testing.T) {
	if len(badCases) < 40 {
		t.Fatalf("only %d bad configs", len(badCases))
	}
	for _, c := range badCases {
		t.Run(c.name, func(t *testing.T) {
			line := markedLine(t, c.yaml)
			cfg, _, err := Parse("bad.yaml", []byte(c.yaml))
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("Parse returned config %v, error %v; want *Error", cfg != nil, err)
			}
			if cfg != nil {
				t.Error("Parse returned a config with an error")
			}
			for _, is := range cerr.Issues {
				if is.Line != line || is.Path != c.path {
					continue
				}
				_, allowed, ok := strings.Cut(is.Message, "allowed: ")
				if !ok || !strings.Contains(allowed, c.allowed) {
					t.Errorf("message %q: want %q after \"allowed: \"", is.Message, c.allowed)
				}
				if !strings.Contains(is.Message, c.want) {
					t.Errorf("message %q: want %q in it", is.Message, c.want)
				}
				prefix := fmt.Sprintf("bad.yaml:%d:%d: ", line, is.Column)
				if is.Column < 1 || !strings.HasPrefix(is.String(), prefix) || (c.path != "" && !strings.Contains(is.String(), c.path+": ")) {
					t.Errorf("formatted issue %q: want prefix %q and the key path", is.String(), prefix)
				}
				return
			}
			t.Errorf("no issue at line %d, path %q; got:\n%v", line, c.path, err)
		})
	}
}

// TestAllErrorsAtOnce checks that one file's problems are all reported, in file order.
func TestAllErrorsAtOnce(t *testing.T) {
	src := `watch_interval_sec: -1
aod_output_dir: [relative]
anomalies:
  smb:
    latency:
      mode: sometimes
      acceptable_count: many
      track_commands:
        - command: SMB2_FOO
          threshold: soon
    error:
      rules:
        - {name: a, acceptable_count: 1, track_errors: [STATUS_NOPE]}
        - {name: a, acceptable_count: 1, track_errors: [EIO]}
cleanup:
  max_total_log_size_mb: big
`
	_, _, err := Parse("many.yaml", []byte(src))
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("err = %v", err)
	}
	wantLines := []int{1, 2, 6, 7, 9, 10, 13, 14, 16}
	var got []int
	for _, is := range cerr.Issues {
		got = append(got, is.Line)
	}
	if fmt.Sprint(got) != fmt.Sprint(wantLines) {
		t.Errorf("issue lines = %v, want %v:\n%v", got, wantLines, err)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != len(wantLines) {
		t.Errorf("Error() has %d lines, want one per issue", n)
	}
}

func TestSyntaxErrors(t *testing.T) {
	cases := []struct {
		src      string
		line     int
		contains string
	}{
		{"a: b\n  c: d\n", 2, "invalid YAML"},
		{"watch_interval_sec: 1\n---\nwatch_interval_sec: 2\n", 2, "a single document"},
		{"anomalies: [\n", 1, "invalid YAML"},
	}
	for _, c := range cases {
		_, _, err := Parse("syntax.yaml", []byte(c.src))
		var cerr *Error
		if !errors.As(err, &cerr) || len(cerr.Issues) != 1 {
			t.Errorf("%q: err = %v, want one issue", c.src, err)
			continue
		}
		is := cerr.Issues[0]
		if is.Line != c.line || !strings.Contains(is.Message, c.contains) {
			t.Errorf("%q: issue %q, want line %d containing %q", c.src, is, c.line, c.contains)
		}
	}
}
