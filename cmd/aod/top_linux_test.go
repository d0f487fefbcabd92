package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/linuxdiag/aod/agent"
	"github.com/linuxdiag/aod/bpf/bpftest"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/fixtures"
	"github.com/linuxdiag/aod/internal/smb"
)

// TestTopShowsRequestsFromTheAgent runs an agent on the real probes (driven by the
// BPF test harness), points `aod top` at its control socket with output to a pipe,
// and checks the smbslower-style lines and the per-command summary.
func TestTopShowsRequestsFromTheAgent(t *testing.T) {
	h := bpftest.New(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "aod.sock")
	cfg, _, err := config.Parse("top.yaml", []byte(`aod_output_dir: `+dir+`
anomalies:
  smb:
    latency: {tool: smbslower, mode: all, acceptable_count: 100, default_threshold_ms: 50}
    error:
      tool: smbiosnoop
      rules: [{name: gone, acceptable_count: 100, track_errors: [STATUS_NETWORK_NAME_DELETED]}]
telemetry: {prometheus: {listen: ""}}
`))
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(cfg, agent.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Kernel: h.Probes(), ProcDir: fixtures.Path("kernel-6.12"), ControlSocket: sock})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())

	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan int, 1)
	c := &cli{stdout: &out, stderr: io.Discard, globals: globals{logFormat: "text", logLevel: "info"}}
	go func() { done <- c.top(ctx, []string{"--control-socket", sock, "--interval", "1h"}) }()

	// Requests made before top is watching are not shown: repeat until one is.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "SMB2_READ") {
		if time.Now().After(deadline) {
			t.Fatalf("no SMB2_READ line:\n%s", out.String())
		}
		h.Request(bpftest.Request{Session: 0x936c11ff, Tree: 0x53dfe4a, Command: smb.Read, Latency: 120 * time.Millisecond})
		time.Sleep(50 * time.Millisecond)
	}
	h.Request(bpftest.Request{Session: 0x936c11ff, Tree: 0x53dfe4a, Command: smb.Create, Latency: time.Millisecond,
		Status: 0xc00000c9, Rc: -2}) // STATUS_NETWORK_NAME_DELETED
	deadline = time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "STATUS_NETWORK_NAME_DELETED") {
		if time.Now().After(deadline) {
			t.Fatalf("no failed CREATE line:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("top exit %d", code)
	}
	text := out.String()
	lines := strings.Split(strings.TrimSpace(text), "\n")
	// First which probes are attached (none: this agent reads a test kernel it did not
	// attach), then the header.
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "probes: ") || !strings.HasPrefix(lines[1], "TIME ") || strings.Count(text, "TIME ") != 1 {
		t.Errorf("a pipe gets the probes line and the header once, first:\n%s", text)
	}
	if strings.Contains(text, "\x1b[") {
		t.Errorf("escape sequences in piped output:\n%s", text)
	}
	read := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d\.\d{3} +\S+ +\d+ +SMB2_READ +1[2-9]\d\.\d{3} +- +\\\\127\.0\.0\.1\\share$`)
	if !read.MatchString(text) {
		t.Errorf("no READ line with its latency and share:\n%s", text)
	}
	if !strings.Contains(text, "SMB2_CREATE") {
		t.Errorf("no CREATE line:\n%s", text)
	}
	// The summary is printed when top stops.
	if !regexp.MustCompile(`(?m)^-- .* SMB2_CREATE n=1 failed=1 .* SMB2_READ n=\d+ failed=0 avg=1[2-9]\d\.\dms`).MatchString(text) {
		t.Errorf("no per-command summary:\n%s", text)
	}
}
