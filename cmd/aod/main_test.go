package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/linuxdiag/aod/configs"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/fixtures"
)

var (
	fixture2025 = fixtures.Path("aodv2/aodv2-2025-config.yaml")
	fixture2026 = fixtures.Path("aodv2/aodv2-2026-config.yaml")
)

// call runs the command line in-process.
func call(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = aod(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "aod.yaml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// hermetic returns a copy of the configuration src (a file, or the embedded default
// when "") that writes bundles to a temporary directory and serves no Prometheus
// port, and a control socket path, so that agent tests touch nothing of the host's.
func hermetic(t *testing.T, src string) (cfgPath, sock string) {
	t.Helper()
	data := configs.Default
	if src != "" {
		var err error
		if data, err = os.ReadFile(src); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	s := string(data)
	if !strings.Contains(s, "aod_output_dir: /var/log/aod") {
		t.Fatalf("%s: no aod_output_dir to replace", src)
	}
	s = strings.Replace(s, "aod_output_dir: /var/log/aod", "aod_output_dir: "+dir, 1)
	if strings.Contains(s, "listen: 127.0.0.1:9464") {
		s = strings.Replace(s, "listen: 127.0.0.1:9464", `listen: ""`, 1)
	} else {
		s += "\ntelemetry:\n  prometheus:\n    listen: \"\"\n"
	}
	return writeFile(t, s), filepath.Join(dir, "aod.sock")
}

const badConfig = `watch_interval_sec: -1
anomalies:
  smb:
    latency:
      mode: often
      acceptable_count: 1
cleanup:
  max_log_age_days: "two"
`

func TestExitCodesAndOutput(t *testing.T) {
	bad := writeFile(t, badConfig)
	huge := writeFile(t, "# "+strings.Repeat("x", config.MaxFileBytes)+"\n")
	cases := []struct {
		args             []string
		code             int
		stdout, stderr   string // substrings that must appear
		noStdout, noWarn bool
	}{
		{args: nil, code: exitUsage, stderr: "Usage: aod", noStdout: true},
		{args: []string{"help"}, code: exitOK, stdout: "config validate FILE"},
		{args: []string{"-h"}, code: exitOK, stdout: "Usage: aod"},
		{args: []string{"config", "show", "--help"}, code: exitOK, stdout: "Usage: aod"},
		{args: []string{"frobnicate"}, code: exitUsage, stderr: `unknown command "frobnicate"`, noStdout: true},
		{args: []string{"--bogus"}, code: exitUsage, stderr: "flag provided but not defined: -bogus"},
		{args: []string{"version"}, code: exitOK, stdout: "aod dev (commit "},
		{args: []string{"version", "extra"}, code: exitOK, stdout: "aod "},
		{args: []string{"--log-format", "xml", "version"}, code: exitUsage, stderr: `unknown log format "xml"`},
		{args: []string{"version", "--log-level", "loud"}, code: exitUsage, stderr: `unknown log level "loud"`},
		{args: []string{"config"}, code: exitUsage, stderr: "config needs a subcommand"},
		{args: []string{"config", "validate"}, code: exitUsage, stderr: "needs exactly one FILE"},
		{args: []string{"config", "migrate", "a", "b"}, code: exitUsage, stderr: "needs exactly one FILE"},
		{args: []string{"config", "show", "a", "b"}, code: exitUsage, stderr: "at most one FILE"},
		{args: []string{"config", "lint", "x"}, code: exitUsage, stderr: `unknown config subcommand "lint"`},
		{args: []string{"config", "validate", fixture2026}, code: exitOK, stdout: fixture2026 + ": valid", noWarn: true},
		{args: []string{"config", "validate", fixture2025}, code: exitOK, stdout: "valid", stderr: "warning: " + fixture2025 + ":4:1: watcher: AODv2 2025 form"},
		{args: []string{"config", "validate", bad}, code: exitFailure, noStdout: true,
			stderr: bad + ":1:21: watch_interval_sec: out of range"},
		{args: []string{"config", "validate", "testdata/none.yaml"}, code: exitFailure, stderr: "no such file"},
		{args: []string{"config", "show", bad}, code: exitFailure, noStdout: true, stderr: "3 problems"},
		{args: []string{"config", "migrate", fixture2026}, code: exitOK, stdout: "anomalies:", stderr: "already in the 2026 form"},
		{args: []string{"config", "migrate", bad}, code: exitFailure, noStdout: true, stderr: "mode: invalid value"},
		{args: []string{"config", "migrate", huge}, code: exitFailure, noStdout: true, stderr: huge + ": larger than 1048576 bytes"},
		{args: []string{"config", "migrate", "/dev/null"}, code: exitFailure, noStdout: true, stderr: "/dev/null: not a regular file"},
		{args: []string{"run", "extra"}, code: exitUsage, stderr: "run takes no arguments"},
		{args: []string{"run", "--nope"}, code: exitUsage, stderr: "flag provided but not defined: -nope"},
		{args: []string{"run", "--config", bad}, code: exitFailure, stderr: "invalid configuration; not starting"},
	}
	for _, c := range cases {
		code, stdout, stderr := call(context.Background(), c.args...)
		if code != c.code || !strings.Contains(stdout, c.stdout) || !strings.Contains(stderr, c.stderr) ||
			(c.noStdout && stdout != "") || (c.noWarn && stderr != "") {
			t.Errorf("aod %q: exit %d (want %d)\nstdout: %q (want %q)\nstderr: %q (want %q)",
				c.args, code, c.code, stdout, c.stdout, stderr, c.stderr)
		}
	}
}

// TestValidatePrintsEveryProblem: all three problems of the file, one per line, in
// file order, then the count.
func TestValidatePrintsEveryProblem(t *testing.T) {
	bad := writeFile(t, badConfig)
	code, _, stderr := call(context.Background(), "config", "validate", bad)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	want := []string{
		bad + ":1:21: watch_interval_sec: out of range: got -1; allowed: a number of seconds",
		bad + ":5:13: anomalies.smb.latency.mode: invalid value: got \"often\"; allowed: all, trackonly, excludeonly",
		bad + ":8:21: cleanup.max_log_age_days: wrong type: got a string (\"two\"); allowed: a number of days",
		"3 problems",
	}
	if code != exitFailure || len(lines) != len(want) {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], want[i])
		}
	}
}

func TestShowRoundTrips(t *testing.T) {
	for _, file := range []string{fixture2025, fixture2026, ""} {
		args := []string{"config", "show"}
		if file != "" {
			args = append(args, file)
		}
		code, stdout, _ := call(context.Background(), args...)
		if code != exitOK {
			t.Fatalf("show %s: exit %d", file, code)
		}
		want, _, err := loadConfig(file)
		if err != nil {
			t.Fatal(err)
		}
		got, warns, err := config.Parse("shown.yaml", []byte(stdout))
		if err != nil || len(warns) != 0 || !reflect.DeepEqual(got, want) {
			t.Errorf("show %s does not load back to the same config: %v %v", file, err, warns)
		}
	}
}

func TestMigrateOutputLoads(t *testing.T) {
	code, stdout, stderr := call(context.Background(), "config", "migrate", fixture2025)
	if code != exitOK || stderr != "" || strings.Contains(stdout, "\nguardian:") {
		t.Fatalf("exit %d, stderr %q\n%s", code, stderr, stdout)
	}
	p := writeFile(t, stdout)
	code, _, stderr = call(context.Background(), "config", "validate", p)
	if code != exitOK || stderr != "" {
		t.Errorf("migrated file: exit %d, stderr %q", code, stderr)
	}
}

// TestRunReportsPlan runs the agent with an already cancelled context: it must log
// what it watches, SMB and NFS, skip no section of the file, and stop cleanly.
func TestRunReportsPlan(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg, sock := hermetic(t, fixture2026)
	code, stdout, stderr := call(ctx, "--log-format", "json", "run", "--config", cfg, "--control-socket", sock)
	if code != exitOK || stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	var msgs []string
	sections := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		msgs = append(msgs, rec["msg"].(string))
		if s, ok := rec["section"].(string); ok {
			sections[s]++
		}
	}
	for _, want := range []string{"aod starting", "watching SMB latency", "watching SMB connections",
		"watching NFS latency", "watching NFS errors", "watching NFS connections", "aod stopping"} {
		if !strings.Contains(strings.Join(msgs, "|"), want) {
			t.Errorf("no %q in %v", want, msgs)
		}
	}
	if len(sections) != 0 {
		t.Errorf("skipped sections = %v, want none", sections)
	}
}

// syncBuffer is a bytes.Buffer safe for the agent's writes and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunStopsOnSIGTERM sends the process SIGTERM while `aod run` waits: the
// interrupter main uses must stop it cleanly with exit 0, not force the exit.
func TestRunStopsOnSIGTERM(t *testing.T) {
	in := notifyInterrupt(io.Discard, func(code int) { t.Errorf("forced exit %d", code) })
	defer in.stop()
	ctx := in.ctx
	var stderr syncBuffer
	done := make(chan int, 1)
	cfg, sock := hermetic(t, "")
	go func() {
		done <- aod(ctx, []string{"run", "--config", cfg, "--control-socket", sock}, &bytes.Buffer{}, &stderr)
	}()

	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "watching SMB latency") {
		if time.Now().After(deadline) {
			t.Fatalf("agent did not start:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != exitOK || !strings.Contains(stderr.String(), "aod stopping") {
			t.Errorf("exit %d:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not stop on SIGTERM")
	}
}
