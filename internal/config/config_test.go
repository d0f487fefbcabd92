package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linuxdiag/aod/configs"
	"github.com/linuxdiag/aod/internal/fixtures"
	"github.com/linuxdiag/aod/internal/smb"
)

var (
	fixture2025 = fixtures.Path("aodv2/aodv2-2025-config.yaml")
	fixture2026 = fixtures.Path("aodv2/aodv2-2026-config.yaml")
)

func mustLoad(t *testing.T, path string) (*Config, []Issue) {
	t.Helper()
	cfg, warns, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return cfg, warns
}

func TestFixture2026(t *testing.T) {
	cfg, warns := mustLoad(t, fixture2026)
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	if cfg.WatchInterval != 60*time.Second || cfg.OutputDir != "/var/log/aod" {
		t.Errorf("top level: %v %q", cfg.WatchInterval, cfg.OutputDir)
	}
	l := cfg.Anomalies.SMB.Latency
	if l == nil || l.Tool != "smbslower" || l.Mode != ModeAll || l.AcceptableCount != 10 || l.DefaultThreshold != 20*time.Millisecond {
		t.Fatalf("smb latency: %+v", l)
	}
	if want := []CommandThreshold{{"SMB2_WRITE", 50 * time.Millisecond}}; !reflect.DeepEqual(l.TrackCommands, want) {
		t.Errorf("track_commands = %v", l.TrackCommands)
	}
	wantActions := []string{"dmesg", "journalctl", "debugdata", "stats", "mounts", "smbinfo", "syslogs", "tcpdump"}
	if got := names(l.Actions); !slices.Equal(got, wantActions) {
		t.Errorf("actions = %v, want %v (in file order)", got, wantActions)
	}
	tcpdump := l.Actions[7]
	if !tcpdump.IsCapture() || !slices.Equal(tcpdump.Args, []string{"-s", "65536", "-B", "10240", "-C", "2", "-W", "100"}) || l.Actions[0].IsCapture() || l.Actions[0].Args != nil {
		t.Errorf("capture args: %+v, quick: %+v", tcpdump, l.Actions[0])
	}
	if s := cfg.Anomalies.SMB.Sockconn; s == nil || s.Tool != "ss" || s.AcceptableCount != 1 || len(s.Actions) != 4 {
		t.Errorf("smb sockconn: %+v", s)
	}
	nfs := cfg.Anomalies.NFS
	if nfs.Latency == nil || nfs.Latency.DefaultThreshold != 50*time.Millisecond || nfs.Sockconn == nil {
		t.Errorf("nfs: %+v", nfs)
	}
	want := []ErrorRule{{Name: LegacyRuleName, AcceptableCount: 5, TrackErrors: []string{"NFS4ERR_BAD_STATEID", "NFS4ERR_OLD_STATEID"}}}
	if e := nfs.Error; e == nil || !e.Legacy || !reflect.DeepEqual(e.Rules, want) || e.Tool != "nfsiosnoop" {
		t.Errorf("nfs error: %+v", e)
	}
	if got := nfs.Types(); !slices.Equal(got, []string{"latency", "error", "sockconn"}) {
		t.Errorf("nfs types = %v", got)
	}
	if cfg.Cleanup != (Cleanup{Interval: 300 * time.Second, MaxAge: 48 * time.Hour, MaxTotalSize: 1024 << 20}) {
		t.Errorf("cleanup = %+v", cfg.Cleanup)
	}
	// Sections the file leaves out keep their defaults.
	def := Defaults()
	if !reflect.DeepEqual(cfg.Telemetry, def.Telemetry) || !reflect.DeepEqual(cfg.Detection, def.Detection) || cfg.Collection != def.Collection || cfg.Bundle != def.Bundle {
		t.Error("aod sections are not the defaults")
	}
}

func TestFixture2025(t *testing.T) {
	cfg, warns := mustLoad(t, fixture2025)
	if len(warns) != 1 {
		t.Fatalf("warnings = %v, want exactly one", warns)
	}
	w := warns[0]
	if w.Line != 4 || !strings.Contains(w.Message, "aod config migrate "+fixture2025) || !strings.Contains(w.Message, "2025") {
		t.Errorf("warning = %q", w)
	}
	if cfg.WatchInterval != time.Second {
		t.Errorf("watch interval = %v", cfg.WatchInterval)
	}
	if cfg.Cleanup.MaxTotalSize != 512<<10 || cfg.Cleanup.Interval != time.Minute {
		t.Errorf("cleanup = %+v; max_total_log_size_mb 0.5 is 524288 bytes", cfg.Cleanup)
	}
	l := cfg.Anomalies.SMB.Latency
	if l == nil || l.DefaultThreshold != 20*time.Millisecond || len(l.Actions) != 7 || l.Actions[6].Name != "syslogs" {
		t.Fatalf("latency = %+v", l)
	}
	e := cfg.Anomalies.SMB.Error
	if e == nil || !e.Legacy || e.Tool != "smbiosnoop" || !slices.Equal(names(e.Actions), []string{"dmesg", "journalctl"}) {
		t.Fatalf("error = %+v", e)
	}
	want := []ErrorRule{{Name: LegacyRuleName, AcceptableCount: 10, TrackErrors: []string{"EACCES", "EAGAIN", "EIO"}}}
	if !reflect.DeepEqual(e.Rules, want) {
		t.Errorf("rules = %+v", e.Rules)
	}
	m := e.Rules[0].Match(smb.Table)
	if len(m.Commands) != 0 || len(m.Statuses) != 0 || !slices.Equal(m.Errnos, []int32{5, 11, 13}) {
		t.Errorf("match = %+v; want errnos EIO(5) EAGAIN(11) EACCES(13)", m)
	}
}

// TestWatcherActionsAreDefaults: in the 2025 form, an anomaly that lists no actions
// runs watcher.actions, with a warning, as AODv2 ran none there.
func TestWatcherActionsAreDefaults(t *testing.T) {
	src := `watcher:
  actions: [dmesg, stats]
guardian:
  anomalies:
    latency:
      type: Latency
      acceptable_count: 3
    error:
      type: Error
      mode: trackonly
      acceptable_count: 1
      track_codes: [EIO]
      actions: [mounts]
`
	cfg, warns, err := Parse("w.yaml", []byte(src))
	if err != nil || len(warns) != 2 {
		t.Fatalf("err = %v, warnings = %v", err, warns)
	}
	if w := warns[1]; w.Line != 5 || w.Path != "guardian.anomalies.latency" || !strings.Contains(w.Message, "aod runs watcher.actions: dmesg, stats") {
		t.Errorf("warning = %q, want line 5 naming the actions aod runs", w)
	}
	if got := names(cfg.Anomalies.SMB.Latency.Actions); !slices.Equal(got, []string{"dmesg", "stats"}) {
		t.Errorf("latency actions = %v, want watcher's", got)
	}
	if got := names(cfg.Anomalies.SMB.Error.Actions); !slices.Equal(got, []string{"mounts"}) {
		t.Errorf("error actions = %v, want its own", got)
	}
}

func names(actions []Action) []string {
	var out []string
	for _, a := range actions {
		out = append(out, a.Name)
	}
	return out
}

// roundTripSources are valid configurations exercising every form show must keep.
var roundTripSources = map[string]string{
	"rules and extras": `watch_interval_sec: 2.5
aod_output_dir: /srv/aod/
anomalies:
  smb:
    latency:
      mode: trackonly
      acceptable_count: 3
      default_threshold_ms: 0.25
      track_commands:
        - command: READ
        - command: SMB2_WRITE
          threshold: 1.5
    error:
      rules:
        - name: severe
          acceptable_count: 1
          track_errors: [STATUS_IO_TIMEOUT, STATUS_ABANDONED_WAIT_0, EWOULDBLOCK]
        - name: reads.slow-1
          acceptable_count: 7
          track_commands: [SMB2_READ, QUERY_INFO]
      actions:
        tcpdump: [-i, any, -C, 1, -W, 4, port 445]
    sockconn:
      acceptable_count: 2
      actions: {dmesg: ~}
  io:
    error:
      acceptable_count: 2
      track_errors: [EIO]
cleanup:
  max_log_age_days: 0.5
  max_total_log_size_mb: 1.25
telemetry:
  otlp:
    endpoint: https://collector.example:4318/
    protocol: http
    headers: {authorization: "Bearer x", x-scope: "5"}
    compression: none
    timeout_sec: 2.5
    tls: {ca_file: /etc/ssl/ca.pem, cert_file: c.pem, key_file: k.pem, server_name: collector}
  prometheus:
    listen: ""
  cardinality_limit: 50
detection: {cooldown_sec: 0, latency_ceiling_ms: 0, max_events: 7}
collection: {timeout_sec: 0.5, lookback_sec: 60, max_output_mb: 0.125, concurrency: 1}
bundle: {zstd_level: 19, min_free_mb: 0, shutdown_dump: false}
workloads: {cgroup_root: /host/sys/fs/cgroup, pod_log_dir: /host/pods, container_log_dir: /host/containers, metric_attributes: true}
`,
	"excludeonly": `anomalies:
  smb:
    latency:
      mode: excludeonly
      acceptable_count: 1
      exclude_commands: [SMB2_CHANGE_NOTIFY, OPLOCK_BREAK]
`,
	"empty": "",
	"anchors": `base: &th 25
anomalies:
  smb:
    latency:
      acceptable_count: 1
      default_threshold_ms: *th
`,
}

func TestRoundTrip(t *testing.T) {
	srcs := map[string][]byte{"default": configs.Default}
	for name, s := range roundTripSources {
		srcs[name] = []byte(s)
	}
	delete(srcs, "anchors") // "base:" is no key of ours; checked in TestAnchors
	for _, f := range []string{fixture2025, fixture2026} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		srcs[f] = data
	}
	for name, src := range srcs {
		t.Run(name, func(t *testing.T) {
			cfg, _, err := Parse(name, src)
			if err != nil {
				t.Fatal(err)
			}
			shown, err := cfg.YAML()
			if err != nil {
				t.Fatal(err)
			}
			again, warns, err := Parse("shown.yaml", shown)
			if err != nil || len(warns) != 0 {
				t.Fatalf("show output does not load cleanly: %v %v\n%s", err, warns, shown)
			}
			if !reflect.DeepEqual(cfg, again) {
				t.Errorf("show -> load differs:\n%+v\n%+v\n%s", cfg, again, shown)
			}
			shownAgain, _ := again.YAML()
			if !bytes.Equal(shown, shownAgain) {
				t.Errorf("show is not stable:\n%s\n---\n%s", shown, shownAgain)
			}
		})
	}
}

func TestAnchors(t *testing.T) {
	src := strings.Replace(roundTripSources["anchors"], "base: &th 25\n", "", 1)
	src = strings.Replace(src, "acceptable_count: 1", "acceptable_count: &n 25", 1)
	src = strings.Replace(src, "*th", "*n", 1)
	cfg, _, err := Parse("a.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if l := cfg.Anomalies.SMB.Latency; l.AcceptableCount != 25 || l.DefaultThreshold != 25*time.Millisecond {
		t.Errorf("aliases not followed: %+v", l)
	}
}

func TestEmptyIsDefaults(t *testing.T) {
	for _, src := range []string{"", "# only a comment\n", "{}\n"} {
		cfg, warns, err := Parse("e.yaml", []byte(src))
		if err != nil || len(warns) != 0 || !reflect.DeepEqual(cfg, Defaults()) {
			t.Errorf("%q: cfg %+v, warnings %v, err %v", src, cfg, warns, err)
		}
	}
}

func TestMigrate(t *testing.T) {
	data, err := os.ReadFile(fixture2025)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := Parse(fixture2025, data)
	if err != nil {
		t.Fatal(err)
	}
	out, migrated, err := Migrate(fixture2025, data)
	if err != nil || !migrated {
		t.Fatalf("migrated = %v, err = %v", migrated, err)
	}
	for _, gone := range []string{"\nwatcher:", "\nguardian:", "\naudit:", "type:", "track_codes"} {
		if bytes.Contains(out, []byte(gone)) {
			t.Errorf("migrated file still has %q:\n%s", gone, out)
		}
	}
	if !bytes.Contains(out, []byte("# Maximum age of logs in days")) {
		t.Errorf("migration lost the comments of kept sections:\n%s", out)
	}
	got, warns, err := Parse("migrated.yaml", out)
	if err != nil || len(warns) != 0 {
		t.Fatalf("migrated file: err %v, warnings %v\n%s", err, warns, out)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("migrated config differs:\n%+v\n%+v", got, want)
	}

	data, _ = os.ReadFile(fixture2026)
	out, migrated, err = Migrate(fixture2026, data)
	if err != nil || migrated || !bytes.Equal(out, data) {
		t.Errorf("2026 form: migrated = %v, err = %v, changed = %v", migrated, err, !bytes.Equal(out, data))
	}
	if _, _, err := Migrate("bad.yaml", []byte("guardian: 5\n")); err == nil {
		t.Error("Migrate accepted an invalid file")
	}
}

func TestAuditIn2026FormWarns(t *testing.T) {
	_, warns, err := Parse("a.yaml", []byte("audit:\n  enabled: true\n"))
	if err != nil || len(warns) != 1 || warns[0].Path != "audit" || !strings.Contains(warns[0].Message, "ignored") {
		t.Errorf("err %v, warnings %v", err, warns)
	}
}

// TestDefaultConfig checks the embedded default is quiet on normal traffic and fast on
// severe failures.
func TestDefaultConfig(t *testing.T) {
	cfg, warns, err := Parse(configs.DefaultName, configs.Default)
	if err != nil || len(warns) != 0 {
		t.Fatalf("err %v, warnings %v", err, warns)
	}
	if cfg.OutputDir != "/var/log/aod" || cfg.Telemetry.Prometheus.Listen != "127.0.0.1:9464" {
		t.Errorf("output %q, prometheus %q", cfg.OutputDir, cfg.Telemetry.Prometheus.Listen)
	}
	l := cfg.Anomalies.SMB.Latency
	if _, ok := l.Threshold(smb.Table, smb.ChangeNotify); ok {
		t.Error("CHANGE_NOTIFY, slow by design, is watched")
	}
	if th, ok := l.Threshold(smb.Table, smb.Read); !ok || th != l.DefaultThreshold {
		t.Errorf("READ: %v %v", th, ok)
	}
	quiet := map[uint32]bool{0xC0000011: true, 0x80000006: true} // END_OF_FILE, NO_MORE_FILES
	severe := []string{"STATUS_IO_TIMEOUT", "STATUS_NETWORK_NAME_DELETED", "STATUS_USER_SESSION_DELETED", "STATUS_CONNECTION_DISCONNECTED"}
	fast := map[string]bool{}
	for _, r := range cfg.Anomalies.SMB.Error.Rules {
		m := r.Match(smb.Table)
		if len(m.Statuses) == 0 {
			t.Errorf("rule %s matches every status", r.Name)
		}
		for _, s := range m.Statuses {
			if quiet[s] {
				t.Errorf("rule %s counts %s", r.Name, smb.StatusName(s))
			}
			if s == 0xC0000034 && r.AcceptableCount < 100 {
				t.Errorf("rule %s fires on %d lookup misses", r.Name, r.AcceptableCount)
			}
			if r.AcceptableCount == 1 {
				fast[smb.StatusName(s)] = true
			}
		}
	}
	for _, s := range severe {
		if !fast[s] {
			t.Errorf("%s does not fire on the first occurrence", s)
		}
	}
	if cfg.Anomalies.SMB.Sockconn == nil || cfg.Cleanup.MaxTotalSize <= 0 {
		t.Error("sockconn or cleanup missing")
	}
}

func TestThreshold(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		l    LatencyAnomaly
		want map[uint16]time.Duration // watched commands; others must be unwatched
		n    int
	}{
		{LatencyAnomaly{Mode: ModeAll, DefaultThreshold: 10 * ms,
			TrackCommands: []CommandThreshold{{"SMB2_WRITE", 50 * ms}}, ExcludeCommands: []string{"SMB2_ECHO"}},
			map[uint16]time.Duration{smb.Write: 50 * ms, smb.Read: 10 * ms, smb.Negotiate: 10 * ms}, 19},
		{LatencyAnomaly{Mode: ModeTrackOnly, DefaultThreshold: 10 * ms,
			TrackCommands: []CommandThreshold{{"SMB2_READ", 5 * ms}, {"SMB2_CREATE", 10 * ms}}},
			map[uint16]time.Duration{smb.Read: 5 * ms, smb.Create: 10 * ms}, 2},
		{LatencyAnomaly{Mode: ModeExcludeOnly, DefaultThreshold: 7 * ms, ExcludeCommands: []string{"SMB2_LOCK", "SMB2_CHANGE_NOTIFY"}},
			map[uint16]time.Duration{smb.Read: 7 * ms, smb.OplockBreak: 7 * ms}, 18},
	}
	for i, c := range cases {
		set := c.l.Commands(smb.Table)
		if set.Len() != c.n {
			t.Errorf("case %d: %d commands watched, want %d", i, set.Len(), c.n)
		}
		for code := range uint16(smb.NumCommands + 1) {
			th, ok := c.l.Threshold(smb.Table, code)
			want, watched := c.want[code]
			if watched && (!ok || th != want) {
				t.Errorf("case %d: %s = %v %v, want %v", i, smb.Command(code), th, ok, want)
			}
			if ok != set.Has(code) {
				t.Errorf("case %d: SMBThreshold and SMBCommands disagree on %d", i, code)
			}
		}
	}
	if _, ok := cases[0].l.Threshold(smb.Table, smb.Echo); ok {
		t.Error("excluded ECHO is watched")
	}
}

func TestMatch(t *testing.T) {
	r := ErrorRule{TrackCommands: []string{"SMB2_WRITE", "SMB2_READ"}, TrackErrors: []string{"STATUS_IO_TIMEOUT", "EIO", "STATUS_END_OF_FILE"}}
	m := r.Match(smb.Table)
	want := ErrorMatch{Commands: []uint16{smb.Read, smb.Write}, Statuses: []uint32{0xC0000011, 0xC00000B5}, Errnos: []int32{5}}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("SMBMatch = %+v, want %+v", m, want)
	}
}

// TestEmbeddedFileRestatesTheDefaults: the embedded file spells some defaults out for
// its readers (cleanup, telemetry, detection). They must be the defaults, or a file
// copied from it with a section left out would behave unlike the copy.
func TestEmbeddedFileRestatesTheDefaults(t *testing.T) {
	cfg, _, err := Parse(configs.DefaultName, configs.Default)
	if err != nil {
		t.Fatal(err)
	}
	d := Defaults()
	if cfg.OutputDir != d.OutputDir || cfg.Cleanup != d.Cleanup || !reflect.DeepEqual(cfg.Telemetry, d.Telemetry) ||
		!reflect.DeepEqual(cfg.Detection, d.Detection) || cfg.Collection != d.Collection || cfg.Bundle != d.Bundle {
		t.Errorf("embedded file and Defaults differ:\n%+v\n%+v", cfg, d)
	}
}

func TestDefaultsAreValid(t *testing.T) {
	d := Defaults()
	out, err := d.YAML()
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := Parse("defaults.yaml", out)
	if err != nil || !reflect.DeepEqual(cfg, d) {
		t.Errorf("defaults do not round-trip: %v", err)
	}
}

func BenchmarkParseDefault(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Parse(configs.DefaultName, configs.Default); err != nil {
			b.Fatal(err)
		}
	}
}

// Long options take their value from the next argument, as getopt_long reads them:
// the value is not an operand (trace-cmd refuses those) nor an option of its own.
func TestCaptureLongOptionValues(t *testing.T) {
	yaml := "anomalies:\n  smb:\n    sockconn:\n      actions:\n        tcpdump: [-C, 2, -W, 3, --interface, lo, port 445]\n" +
		"  nfs:\n    sockconn:\n      actions:\n        trace-cmd: [-e, nfs, --module, nfs, -b, 1024]\n"
	c, _, err := Parse("captures.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Anomalies.NFS.Sockconn.Actions[0]; !a.IsCapture() || !slices.Equal(a.Args, []string{"-e", "nfs", "--module", "nfs", "-b", "1024"}) {
		t.Fatalf("trace-cmd %+v", a)
	}
}

// Load refuses what can never be a configuration file, at once and in bounded
// memory: a named pipe (reading it would block), a device, a huge file.
func TestLoadRefusesNonRegularAndHugeFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "aod.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge.yaml")
	if err := os.WriteFile(huge, bytes.Repeat([]byte("# padding\n"), MaxFileBytes/10+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		fifo:        "not a regular file",
		"/dev/zero": "not a regular file",
		dir:         "not a regular file",
		huge:        "larger than 1048576 bytes",
	} {
		_, _, err := Load(path)
		var cerr *Error
		if !errors.As(err, &cerr) || len(cerr.Issues) != 1 || cerr.Issues[0].File != path || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(%s) = %v, want one issue of that file saying %q", path, err, want)
		}
	}
	// A file of exactly the limit still loads (it is all comments: an empty file).
	limit := filepath.Join(dir, "limit.yaml")
	if err := os.WriteFile(limit, bytes.Repeat([]byte("#"), MaxFileBytes), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(limit); err != nil {
		t.Errorf("a file of MaxFileBytes: %v", err)
	}
}

func TestWorkloads(t *testing.T) {
	cfg, _, err := Parse("a.yaml", []byte(roundTripSources["rules and extras"]))
	if err != nil {
		t.Fatal(err)
	}
	want := Workloads{CgroupRoot: "/host/sys/fs/cgroup", PodLogDir: "/host/pods", ContainerLogDir: "/host/containers", MetricAttributes: true}
	if cfg.Workloads != want {
		t.Errorf("workloads %+v, want %+v", cfg.Workloads, want)
	}
	// Off and the host's places unless asked.
	cfg, _, err = Parse("b.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Workloads{PodLogDir: "/var/log/pods", ContainerLogDir: "/var/log/containers"}); cfg.Workloads != want {
		t.Errorf("default workloads %+v, want %+v", cfg.Workloads, want)
	}
}
