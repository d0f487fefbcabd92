package actions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary act as a misbehaving program for the process-group
// test (actions run programs with a fixed environment, so the mode is an argument):
// "spawn" starts a grandchild, prints its pid and hangs. Run as "smbinfo" (through a
// symlink) it hangs like a query to a dead server; as nfsstat, rpcinfo or showmount
// see fakeNFSTool.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "journalctl" {
		fmt.Println("2026-12-06T10:24:13.410021+01:00 vm1 kernel: CIFS: VFS: \\\\127.0.0.1 has not responded in 180 seconds. Reconnecting...")
		os.Exit(0)
	}
	if filepath.Base(os.Args[0]) == "smbinfo" {
		if filepath.Base(filepath.Dir(os.Args[0])) == "cifs-utils-7.0" {
			// bookworm's smbinfo: no gettconinfo, the other queries answer.
			if len(os.Args) > 1 && os.Args[1] == "gettconinfo" {
				fmt.Fprintln(os.Stderr, "smbinfo: error: argument subcommand: invalid choice: 'gettconinfo'")
				os.Exit(2)
			}
			fmt.Println("Total Allocation Units: 384748")
			os.Exit(0)
		}
		// A query to a dead server: it never answers.
		time.Sleep(time.Hour)
	}
	if fakeNFSTool(filepath.Base(os.Args[0]), os.Args[1:]) {
		os.Exit(0)
	}
	if len(os.Args) == 2 && os.Args[1] == "aod-helper-spawn" {
		child := exec.Command("sleep", "1000")
		if err := child.Start(); err != nil {
			os.Exit(3)
		}
		fmt.Println(child.Process.Pid)
		time.Sleep(time.Hour)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// memOutput keeps an action's files in memory; tests may read them while the
// action still writes.
type memOutput struct {
	mu    sync.Mutex
	files map[string]*bytes.Buffer
}

type memWriter struct {
	m *memOutput
	b *bytes.Buffer
}

func (w memWriter) Write(p []byte) (int, error) {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	return w.b.Write(p)
}

func newMem(limit int64) (*Output, *memOutput) {
	m := &memOutput{files: map[string]*bytes.Buffer{}}
	return NewOutput(limit, func(name string) (io.Writer, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		b := &bytes.Buffer{}
		m.files[name] = b
		return memWriter{m, b}, nil
	}), m
}

func (m *memOutput) get(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.files[name]; ok {
		return b.String()
	}
	return ""
}

func run(t *testing.T, a Action, env *Env, limit int64, timeout time.Duration) (Result, *memOutput) {
	t.Helper()
	if env == nil {
		env = &Env{Since: time.Now().Add(-time.Hour), Until: time.Now()}
	}
	out, mem := newMem(limit)
	return Run(context.Background(), a, env, out, timeout), mem
}

func TestOutputLimit(t *testing.T) {
	out, mem := newMem(10)
	w, err := out.Create("a.txt")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := w.Write([]byte("123456")); n != 6 || err != nil {
		t.Fatalf("first write: %d, %v", n, err)
	}
	if n, err := w.Write([]byte("789012")); n != 4 || !errors.Is(err, ErrLimit) {
		t.Fatalf("write over the limit: %d, %v; want 4, ErrLimit", n, err)
	}
	if out.Remaining() != 0 || mem.get("a.txt") != "1234567890" {
		t.Fatalf("remaining %d, content %q", out.Remaining(), mem.get("a.txt"))
	}
	if _, err := out.Create("a.txt"); err == nil {
		t.Error("a name was created twice")
	}
	for _, bad := range []string{"../x", "/etc/passwd", ".", "", "a//b"} {
		if _, err := out.Create(bad); err == nil {
			t.Errorf("Create(%q) accepted", bad)
		}
	}
	files, n, truncated := out.seal()
	if len(files) != 1 || n != 10 || !truncated {
		t.Fatalf("seal = %v, %d, %v", files, n, truncated)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, errSealed) {
		t.Fatalf("write after seal: %v", err)
	}
}

func TestRunStatuses(t *testing.T) {
	fail := Action{Name: "fail", Run: func(context.Context, *Env, *Output, *Result) error { return errors.New("boom") }}
	skip := Action{Name: "skip", Run: func(context.Context, *Env, *Output, *Result) error { return Skip("no %s here", "thing") }}
	panics := Action{Name: "panics", Run: func(context.Context, *Env, *Output, *Result) error { panic("bug") }}
	ok := Action{Name: "ok", Run: func(_ context.Context, _ *Env, out *Output, r *Result) error {
		r.Source = "somewhere"
		w, err := out.Create("ok.txt")
		if err != nil {
			return err
		}
		_, err = io.WriteString(w, "fine")
		return err
	}}
	for _, tc := range []struct {
		a      Action
		status Status
		text   string
	}{
		{fail, StatusFailed, "boom"},
		{skip, StatusSkipped, "no thing here"},
		{panics, StatusFailed, "panicked: bug"},
		{ok, StatusOK, ""},
	} {
		r, _ := run(t, tc.a, nil, 100, time.Minute)
		if r.Name != tc.a.Name || r.Status != tc.status || !strings.Contains(r.Error+r.Skipped, tc.text) {
			t.Errorf("%s: %+v", tc.a.Name, r)
		}
	}
	r, mem := run(t, ok, nil, 100, time.Minute)
	if r.Bytes != 4 || r.Source != "somewhere" || len(r.Files) != 1 || mem.get("ok.txt") != "fine" {
		t.Errorf("ok result %+v", r)
	}
}

func TestRunAbandonsAnActionThatIgnoresItsContext(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	stuck := Action{Name: "stuck", Run: func(_ context.Context, _ *Env, out *Output, r *Result) error {
		w, _ := out.Create("stuck.txt")
		io.WriteString(w, "before")
		<-release // a read stuck in the kernel, deaf to ctx
		_, err := io.WriteString(w, "after")
		r.Source = "late"
		return err
	}}
	r, mem := run(t, stuck, nil, 100, 10*time.Millisecond)
	if r.Status != StatusTimeout || !strings.Contains(r.Error, "abandoned") {
		t.Fatalf("result %+v", r)
	}
	if r.Bytes != int64(len("before")) || mem.get("stuck.txt") != "before" || r.Source != "" {
		t.Fatalf("abandoned output: %d bytes %q, source %q", r.Bytes, mem.get("stuck.txt"), r.Source)
	}
}

func TestRunCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out, _ := newMem(100)
	r := Run(ctx, Command("hang", "hang.txt", "sleep", "100"), &Env{}, out, time.Minute)
	if r.Status != StatusCanceled {
		t.Fatalf("result %+v", r)
	}
}

func TestCommandTimeout(t *testing.T) {
	r, _ := run(t, Command("hang", "hang.txt", "sleep", "100"), nil, 100, 50*time.Millisecond)
	if r.Status != StatusTimeout || !strings.Contains(r.Error, "timed out after 50ms") || r.ExitCode == nil || *r.ExitCode != -1 {
		t.Fatalf("result %+v", r)
	}
}

func TestCommandEndKillsTheProcessGroup(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{LookPath: func(string) (string, error) { return self, nil }}
	out, mem := newMem(1 << 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	results := make(chan Result, 1)
	go func() {
		results <- Run(ctx, Command("hang", "hang.txt", "helper", "aod-helper-spawn"), env, out, time.Hour)
	}()
	// End the action once the helper has reported its grandchild.
	var pid int
	deadline := time.Now().Add(30 * time.Second)
	for pid == 0 && time.Now().Before(deadline) {
		if s := mem.get("hang.txt"); strings.HasSuffix(s, "\n") {
			if pid, err = strconv.Atoi(strings.TrimSpace(s)); err != nil {
				t.Fatalf("helper output %q", s)
			}
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if pid == 0 {
		t.Fatal("helper never reported its child")
	}
	cancel()
	if r := <-results; r.Status != StatusCanceled {
		t.Fatalf("result %+v", r)
	}
	waitGone(t, pid)
}

// waitGone waits until pid has exited (gone, or a zombie waiting for its reaper).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		if f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	t.Fatalf("process %d survived its group's kill", pid)
}

func TestCommandOutputLimitStopsTheProgram(t *testing.T) {
	r, mem := run(t, Command("yes", "yes.txt", "yes"), nil, 4096, time.Minute)
	if r.Status != StatusOK || !r.Truncated || r.Bytes != 4096 || len(mem.get("yes.txt")) != 4096 {
		t.Fatalf("result %+v, %d bytes kept", r, len(mem.get("yes.txt")))
	}
}

func TestCommandMissingIsASkip(t *testing.T) {
	r, _ := run(t, Command("nope", "nope.txt", "aod-no-such-program"), nil, 100, time.Minute)
	if r.Status != StatusSkipped || !strings.Contains(r.Skipped, "not installed") || r.Command != nil {
		t.Fatalf("result %+v", r)
	}
}

func TestCommandFailureRecordsExitAndStderr(t *testing.T) {
	r, _ := run(t, Command("ls", "ls.txt", "ls", "/aod-no-such-dir"), nil, 100, time.Minute)
	if r.Status != StatusFailed || r.ExitCode == nil || *r.ExitCode == 0 || !strings.Contains(r.Stderr, "aod-no-such-dir") {
		t.Fatalf("result %+v", r)
	}
	if strings.Join(r.Command, " ") != "ls /aod-no-such-dir" {
		t.Fatalf("command %q", r.Command)
	}
}

func TestLookPathUsesSystemDirs(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	p, err := LookPath("ls")
	if err != nil || !filepath.IsAbs(p) {
		t.Fatalf("LookPath(ls) = %q, %v", p, err)
	}
	if _, err := LookPath("aod-no-such-program"); !errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
}

func TestTailWriter(t *testing.T) {
	tw := NewTailWriter(5)
	io.WriteString(tw, "abc")
	io.WriteString(tw, "defgh")
	if tw.String() != "defgh" {
		t.Fatalf("tail = %q", tw.String())
	}
}
