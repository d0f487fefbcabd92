package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linuxdiag/aod/internal/control"
	"github.com/linuxdiag/aod/internal/smb"
)

// TestMain lets a test run aod's main in a child process: this test binary, with
// AOD_TEST_MAIN=1 in its environment, is aod.
func TestMain(m *testing.M) {
	if os.Getenv("AOD_TEST_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

// child is aod's main running in a child process.
type child struct {
	t              *testing.T
	cmd            *exec.Cmd
	stdout, stderr io.ReadCloser
	done           chan struct{}
}

// startAod starts `aod args...` with its stdout and stderr on pipes the test reads
// (or leaves full) as it likes.
func startAod(t *testing.T, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "AOD_TEST_MAIN=1")
	c := &child{t: t, cmd: cmd, done: make(chan struct{})}
	var err error
	if c.stdout, err = cmd.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	if c.stderr, err = cmd.StderrPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			cmd.Process.Kill()
		}
	})
	return c
}

func (c *child) signal(sig syscall.Signal) {
	c.t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		c.t.Fatal(err)
	}
}

// wait waits for the child to exit, then reads what its pipes hold (reading before
// would unblock it), and returns its exit code. A child that does not exit within a
// minute failed to honour the signal.
func (c *child) wait() (code int, stdout, stderr string) {
	c.t.Helper()
	exited := make(chan struct{})
	go func() {
		select {
		case <-exited:
		case <-time.After(time.Minute):
			c.cmd.Process.Kill()
		}
	}()
	st, err := c.cmd.Process.Wait()
	close(exited)
	close(c.done)
	if err != nil {
		c.t.Fatal(err)
	}
	out, _ := io.ReadAll(c.stdout)
	errb, _ := io.ReadAll(c.stderr)
	c.stdout.Close()
	c.stderr.Close()
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		c.t.Fatalf("aod %q did not exit on its own (killed by %v); stderr:\n%.2000s", c.cmd.Args[1:], ws.Signal(), errb)
	}
	return st.ExitCode(), string(out), string(errb)
}

// waitBlockedWriting waits until the child is blocked writing fd (1 or 2), a pipe
// the test does not read: /proc/PID/task/TID/syscall names the system call a
// thread sleeps in, and says "running" of one that runs.
func (c *child) waitBlockedWriting(fd int) {
	c.t.Helper()
	want := fmt.Sprintf("%d %#x ", syscall.SYS_WRITE, fd)
	deadline := time.Now().Add(time.Minute)
	for {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/syscall", c.cmd.Process.Pid))
		for _, p := range tasks {
			if b, err := os.ReadFile(p); err == nil && strings.HasPrefix(string(b), want) {
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("aod %q never blocked writing fd %d", c.cmd.Args[1:], fd)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// bigValidConfig has a thousand rules: `config show` prints far more than a pipe holds.
func bigValidConfig(t *testing.T) string {
	var names []string
	for name := range smb.StatusNames() {
		if code, _ := smb.LookupStatus(name); code>>30 == 3 && len(names) < 5 {
			names = append(names, name)
		}
	}
	var b strings.Builder
	b.WriteString("anomalies:\n  smb:\n    error:\n      tool: smbiosnoop\n      rules:\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "        - {name: r%d, acceptable_count: 1, track_errors: [%s]}\n", i, strings.Join(names, ", "))
	}
	return writeFile(t, b.String())
}

// longKeysConfig has 150 unknown keys of 1,000 characters: the 100 problems listed
// are more than a pipe holds.
func longKeysConfig(t *testing.T) string {
	var b strings.Builder
	for i := range 150 {
		fmt.Fprintf(&b, "k%s%d: 1\n", strings.Repeat("x", 1000), i)
	}
	return writeFile(t, b.String())
}

// TestConfigCommandsStopOnSignal: a config command blocked writing to a pipe nobody
// reads (`aod config show | slow-reader`) ends on SIGTERM, with 143 and the reason.
// With the signal caught and ignored, it used to wait for the reader forever.
func TestConfigCommandsStopOnSignal(t *testing.T) {
	big, long := bigValidConfig(t), longKeysConfig(t)
	cases := []struct {
		args []string
		fd   int // the output that fills
	}{
		{[]string{"config", "show", big}, 1},
		{[]string{"config", "validate", long}, 2},
		{[]string{"config", "migrate", long}, 2},
	}
	for _, tc := range cases {
		c := startAod(t, tc.args...)
		c.waitBlockedWriting(tc.fd)
		c.signal(syscall.SIGTERM)
		code, _, stderr := c.wait()
		if code != 128+int(syscall.SIGTERM) {
			t.Errorf("aod %q: exit %d after SIGTERM, want 143; stderr:\n%.500s", tc.args[:2], code, stderr)
		}
		// With stdout full, the reason goes to stderr; a full stderr drops it
		// rather than holding the exit up.
		if tc.fd == 1 && stderr != "aod: interrupted by SIGTERM\n" {
			t.Errorf("aod %q: stderr %q", tc.args[:2], stderr)
		}
	}
}

// fakeAgent listens at a control socket and hands each request to serve.
func fakeAgent(t *testing.T, serve func(c net.Conn, req control.Request)) string {
	sock := filepath.Join(t.TempDir(), "aod.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var req control.Request
				line, err := bufio.NewReader(c).ReadBytes('\n')
				if err != nil || json.Unmarshal(line, &req) != nil {
					return
				}
				serve(c, req)
			}()
		}
	}()
	return sock
}

// TestSnapshotStopsOnSignal: an agent that never answers does not keep `aod
// snapshot` past SIGINT, which says what happened and exits 130.
func TestSnapshotStopsOnSignal(t *testing.T) {
	asked := make(chan struct{})
	sock := fakeAgent(t, func(c net.Conn, req control.Request) {
		close(asked)
		io.Copy(io.Discard, c) // no reply, until the client hangs up
	})
	c := startAod(t, "snapshot", "--control-socket", sock)
	<-asked
	c.signal(syscall.SIGINT)
	code, stdout, stderr := c.wait()
	if code != 130 || stdout != "" || !strings.Contains(stderr, "aod: snapshot: interrupted by SIGINT before the agent replied") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestTopStopsOnSignal: `aod top` blocked on a full stdout (piped to a pager that
// stopped reading) cannot print its last summary; SIGINT ends it after the grace.
func TestTopStopsOnSignal(t *testing.T) {
	sock := fakeAgent(t, func(c net.Conn, req control.Request) {
		enc := json.NewEncoder(c)
		if enc.Encode(control.Reply{}) != nil {
			return
		}
		for enc.Encode(control.Record{Kind: "latency", Command: "SMB2_READ", Process: "cat", PID: 1, Latency: 0.2}) == nil {
		}
	})
	c := startAod(t, "top", "--control-socket", sock)
	c.waitBlockedWriting(1)
	c.signal(syscall.SIGINT)
	code, _, stderr := c.wait()
	if code != 130 || !strings.Contains(stderr, "aod: interrupted by SIGINT: not stopped within 2s; exiting") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// hungCollector starts `aod run` exporting OTLP to a collector that never answers
// (the export's timeout is 600s), and returns when an export is in flight. waitLog
// reads the agent's log up to a line containing what.
func hungCollector(t *testing.T, args ...string) (c *child, waitLog func(what string) string) {
	exporting := make(chan struct{}, 100)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		exporting <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	cfg, sock := hermetic(t, "")
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	otlp := fmt.Sprintf("    endpoint: %q\n    protocol: http\n    export_interval_sec: 1\n    timeout_sec: 600\n", srv.URL)
	s := strings.Replace(string(data), "    endpoint: \"\"\n", otlp, 1)
	if s == string(data) {
		t.Fatal("the default config has no otlp endpoint to set")
	}
	if err := os.WriteFile(cfg, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}

	c = startAod(t, append([]string{"run", "--config", cfg, "--control-socket", sock}, args...)...)
	logs := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(c.stderr)
		for sc.Scan() {
			logs <- sc.Text()
		}
		close(logs)
	}()
	var seen strings.Builder
	waitLog = func(what string) string {
		t.Helper()
		deadline := time.After(time.Minute)
		for {
			select {
			case line, ok := <-logs:
				if !ok {
					t.Fatalf("no %q in the log:\n%s", what, seen.String())
				}
				seen.WriteString(line + "\n")
				if strings.Contains(line, what) {
					return seen.String()
				}
			case <-deadline:
				t.Fatalf("no %q in the log within a minute:\n%s", what, seen.String())
			}
		}
	}
	<-exporting
	return c, waitLog
}

// TestRunSecondSignalExits: the first SIGTERM starts a clean stop, which waits for
// the export in flight; a second SIGTERM exits at once.
func TestRunSecondSignalExits(t *testing.T) {
	c, waitLog := hungCollector(t)
	c.signal(syscall.SIGTERM)
	waitLog(`msg="aod stopping" reason="interrupted by SIGTERM"`)
	c.signal(syscall.SIGTERM)
	log := waitLog("aod: SIGTERM again: exiting without waiting for a clean stop")
	if code, _, _ := c.wait(); code != 143 {
		t.Errorf("exit %d after the second SIGTERM, want 143:\n%s", code, log)
	}
}

// TestRunShutdownTimeout: a clean stop held up by the export in flight ends after
// --shutdown-timeout, with exit 1 and the reason; it used to last the export's
// timeout.
func TestRunShutdownTimeout(t *testing.T) {
	c, waitLog := hungCollector(t, "--shutdown-timeout", "1s")
	c.signal(syscall.SIGTERM)
	log := waitLog("the clean stop did not finish within 1s (--shutdown-timeout); exiting without it")
	if code, _, _ := c.wait(); code != exitFailure {
		t.Errorf("exit %d, want 1:\n%s", code, log)
	}
}
