package bundler

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/linuxdiag/aod/internal/archive"
	"github.com/linuxdiag/aod/internal/capture"
)

// fakeTcpdump is a program that stands in for tcpdump: it ignores its arguments and
// runs until killed, so a capture's process can be followed without capturing.
func fakeTcpdump(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tcpdump")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexec sleep 600\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

func captureOptions(t *testing.T, out, bin string, prev *Bundler, ring string) Options {
	return Options{OutputDir: out, Previous: prev, Capture: capture.Options{Binary: bin},
		Captures: []capture.Spec{{Protocol: "smb", Tool: capture.ToolTcpdump, Args: []string{"-i", "lo", "-C", "1", "-W", ring}}}}
}

// runningPid waits for b's tcpdump to run and returns its pid.
func runningPid(t *testing.T, b *Bundler) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st := b.Captures()["smb/tcpdump"]; st.Running && st.Pid > 0 {
			return st.Pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("tcpdump not running: %+v", b.Captures())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func alive(pid int) bool { return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }

// TestReplaceHandsOverCaptures follows the capture process through replacements: an
// unchanged capture keeps running (its ring is not cleared), a changed one is stopped
// before its successor starts, and a bundler built but never put in place stops
// nothing of its Previous.
func TestReplaceHandsOverCaptures(t *testing.T) {
	out, bin := t.TempDir(), fakeTcpdump(t)
	ctx := context.Background()
	b1 := newBundler(t, captureOptions(t, out, bin, nil, "2"))
	pid1 := runningPid(t, b1)

	b2, err := New(captureOptions(t, out, bin, b1, "2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.Replace(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b2.Shutdown(ctx) })
	if pid := runningPid(t, b2); pid != pid1 || !alive(pid1) {
		t.Fatalf("unchanged capture: pid %d before, %d after (alive %v); want the same process", pid1, pid, alive(pid1))
	}

	// Built and dropped (a reload that failed after New): b2's capture runs on.
	dropped, err := New(captureOptions(t, out, bin, b2, "2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := dropped.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if !alive(pid1) {
		t.Fatal("shutting down a bundler that never replaced its Previous killed Previous's capture")
	}

	b3, err := New(captureOptions(t, out, bin, b2, "3"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b3.Replace(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b3.Shutdown(ctx) })
	// Replace waited for the old capture to end before starting the new one.
	if alive(pid1) {
		t.Fatalf("changed capture: the old tcpdump %d still runs beside the new", pid1)
	}
	if pid3 := runningPid(t, b3); pid3 == pid1 {
		t.Fatal("changed capture kept the old process")
	}
}

// TestReplaceKeepsCounting: the bundler that replaces another counts on from its
// bundle and retention counters, with the same start time.
func TestReplaceKeepsCounting(t *testing.T) {
	out := t.TempDir()
	ctx := context.Background()
	b1 := newBundler(t, Options{OutputDir: out, MaxAge: time.Hour, Actions: map[Key][]string{{"smb", "latency"}: {"mounts"}}})
	if _, err := b1.Collect(ctx, sample()); err != nil {
		t.Fatal(err)
	}
	// Renamed into place whole: b1's own sweeps run beside this test.
	old := archive.BundleName(time.Now().Add(-2*time.Hour), "smb", "latency")
	part := filepath.Join(out, archive.BatchesDir, "old.partial")
	if err := os.WriteFile(part, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(part, filepath.Join(out, archive.BatchesDir, old)); err != nil {
		t.Fatal(err)
	}
	if _, err := b1.sweeper.Sweep(); err != nil {
		t.Fatal(err)
	}
	before := b1.Stats()
	if before.Bundles != 1 || before.Retention.Deleted != 1 {
		t.Fatalf("before the replacement: %+v", before)
	}

	b2, err := New(Options{OutputDir: out, Previous: b1, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.Replace(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b2.Shutdown(ctx) })
	after := b2.Stats()
	if after.Bundles != 1 || after.BundleBytes != before.BundleBytes || after.Retention.Deleted != 1 ||
		after.Retention.DeletedBytes != 3 || !after.Started.Equal(before.Started) {
		t.Fatalf("after the replacement: %+v, before %+v", after, before)
	}
	if _, err := b2.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if n := b2.Stats().Bundles; n != 2 {
		t.Fatalf("bundles after one more: %d, want 2", n)
	}
}

// TestCheckRefusesAnUnusableOutputDir: a path that cannot be the output directory
// fails Check, and nothing is created.
func TestCheckRefusesAnUnusableOutputDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{file, filepath.Join(file, "below")} {
		b, err := New(Options{OutputDir: out})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Check(); err == nil {
			t.Errorf("%s: Check passed", out)
		}
	}
}
