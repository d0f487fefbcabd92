package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linuxdiag/aod/bpf/bpftest"
)

// TestSignals runs `aod run` in-process with its own probes and checks the signals
// an operator uses: SIGHUP with a broken file keeps the running configuration, SIGHUP
// with a good one reloads it, SIGUSR1 and `aod snapshot` write snapshot bundles, and
// SIGTERM stops the agent cleanly.
func TestSignals(t *testing.T) {
	bpftest.Require(t)
	cfg, sock := hermetic(t, "")
	good, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	in := notifyInterrupt(io.Discard, func(code int) { t.Errorf("forced exit %d", code) })
	defer in.stop()
	ctx := in.ctx
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- aod(ctx, []string{"run", "--config", cfg, "--control-socket", sock}, &bytes.Buffer{}, &stderr)
	}()
	waitLog := func(what string, n int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for strings.Count(stderr.String(), what) < n {
			if time.Now().After(deadline) {
				t.Fatalf("no %q (x%d) in the log:\n%s", what, n, stderr.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitLog("watching SMB latency", 1)

	if err := os.WriteFile(cfg, []byte("watch_interval_sec: soon\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitLog("new configuration rejected; the running one stays in force", 1)
	if !strings.Contains(stderr.String(), "watch_interval_sec: wrong type") {
		t.Errorf("the rejected file's problem is not logged:\n%s", stderr.String())
	}

	changed := strings.Replace(string(good), "default_threshold_ms: 100", "default_threshold_ms: 250", 1)
	if changed == string(good) {
		t.Fatal("the default config has no default_threshold_ms: 100 to change")
	}
	if err := os.WriteFile(cfg, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitLog("configuration reloaded", 1)
	waitLog("default_threshold=250ms", 1)

	out := filepath.Join(filepath.Dir(sock), "batches")
	syscall.Kill(os.Getpid(), syscall.SIGUSR1)
	waitLog("snapshot bundle written", 1)
	code, stdout, errOut := call(context.Background(), "snapshot", "--control-socket", sock)
	if code != exitOK || !strings.HasPrefix(strings.TrimSpace(stdout), out+"/aod_quick_") || !strings.HasSuffix(strings.TrimSpace(stdout), "_aod_snapshot.tar.zst") {
		t.Fatalf("aod snapshot: exit %d, stdout %q, stderr %q", code, stdout, errOut)
	}
	bundles, _ := filepath.Glob(filepath.Join(out, "aod_quick_*_aod_snapshot.tar.zst"))
	if len(bundles) != 2 {
		t.Errorf("snapshot bundles: %v, want 2", bundles)
	}

	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d:\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not stop on SIGTERM")
	}
}

// TestSnapshotWithoutAgent says plainly that nothing runs.
func TestSnapshotWithoutAgent(t *testing.T) {
	code, _, stderr := call(context.Background(), "snapshot", "--control-socket", filepath.Join(t.TempDir(), "none.sock"))
	if code != exitFailure || !strings.Contains(stderr, "no aod agent is running") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// TestSecondRunIsRefused starts `aod run` beside a running one: on the same output
// folder (another control socket) the lock refuses it, on the same control socket
// (another output folder) the socket does; both name the running agent's pid.
func TestSecondRunIsRefused(t *testing.T) {
	bpftest.Require(t)
	cfg, sock := hermetic(t, "")
	ctx, stop := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- aod(ctx, []string{"run", "--config", cfg, "--control-socket", sock}, &bytes.Buffer{}, &stderr)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "watching SMB latency") {
		if time.Now().After(deadline) {
			t.Fatalf("the first agent did not start:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	other, _ := hermetic(t, "")
	pid := fmt.Sprintf("another aod agent (pid %d) is running", os.Getpid())
	for _, args := range [][]string{
		{"run", "--config", cfg, "--control-socket", filepath.Join(t.TempDir(), "second.sock")},
		{"run", "--config", other, "--control-socket", sock},
	} {
		code, _, errOut := call(context.Background(), args...)
		if code != exitFailure || !strings.Contains(errOut, pid) {
			t.Errorf("aod %v beside a running agent: exit %d, want %d and %q in:\n%s", args, code, exitFailure, pid, errOut)
		}
	}
	stop()
	if code := <-done; code != exitOK {
		t.Fatalf("the first agent: exit %d:\n%s", code, stderr.String())
	}
}
