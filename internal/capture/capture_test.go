package capture

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/internal/actions"
	"github.com/linuxdiag/aod/internal/captureargs"
	"github.com/linuxdiag/aod/internal/logging/logtest"
)

func TestTcpdumpCommandLine(t *testing.T) {
	tc, err := newTcpdump(Spec{Protocol: "smb", Tool: ToolTcpdump, Args: []string{"-s", "65536", "-C", "2", "-W", "100"}}, "/cap")
	if err != nil {
		t.Fatal(err)
	}
	want := "-Z root -U -w /cap/smb.pcap -i any -s 65536 -C 2 -W 100 tcp port 445"
	if got := strings.Join(tc.argv, " "); got != want {
		t.Fatalf("argv %q\nwant %q", got, want)
	}
	// The user's interface and filter are kept, not overridden.
	tc, _ = newTcpdump(Spec{Protocol: "smb", Tool: ToolTcpdump, Args: []string{"-ilo", "-C", "2", "-W", "3", "host", "srv"}}, "/cap")
	if got := strings.Join(tc.argv, " "); got != "-Z root -U -w /cap/smb.pcap -ilo -C 2 -W 3 host srv" {
		t.Fatalf("argv %q", got)
	}
}

func TestNewRejects(t *testing.T) {
	args := []string{"-C", "1", "-W", "2"}
	for _, tc := range []struct {
		spec Spec
		o    Options
	}{
		{Spec{Protocol: "smb", Tool: ToolTcpdump, Args: []string{"-C", "1"}}, Options{Dir: "/x"}},
		{Spec{Protocol: "s/b", Tool: ToolTcpdump, Args: args}, Options{Dir: "/x"}},
		{Spec{Protocol: "smb", Tool: ToolTcpdump, Args: args}, Options{}},
	} {
		if _, err := New(tc.spec, tc.o); err == nil {
			t.Errorf("New(%+v, %+v) accepted", tc.spec, tc.o)
		}
	}
}

// memOutput keeps a snapshot in memory.
type memOutput struct {
	mu    sync.Mutex
	files map[string]*bytes.Buffer
}

func snapshot(t *testing.T, c *Capture, since time.Time, limit int64) (actions.Result, *memOutput) {
	t.Helper()
	m := &memOutput{files: map[string]*bytes.Buffer{}}
	out := actions.NewOutput(limit, func(name string) (io.Writer, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		b := &bytes.Buffer{}
		m.files[name] = b
		return b, nil
	})
	env := &actions.Env{Since: since, Until: time.Now()}
	return actions.Run(context.Background(), c.Action(), env, out, time.Minute), m
}

// assertPrivate checks that every file under dir, but those the test wrote itself,
// is 0600 and every directory 0700: the tools write packets and kernel events.
func assertPrivate(t *testing.T, dir string, own ...string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || slices.Contains(own, d.Name()) {
			return err
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if st.IsDir() {
			want = fs.ModeDir | 0o700
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, st.Mode(), want)
		}
		n++
		return nil
	})
	if err != nil || n < 2 {
		t.Fatalf("walk %s: %v (%d entries)", dir, err, n)
	}
}

func need(t *testing.T, tool string) {
	t.Helper()
	if _, err := actions.LookPath(tool); err != nil {
		t.Skipf("%s not installed", tool)
	}
	if os.Geteuid() != 0 {
		t.Skipf("%s needs root", tool)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTcpdumpCapturesAndSnapshots(t *testing.T) {
	need(t, "tcpdump")
	// SO_REUSEPORT: other test packages, run in parallel, may listen there too.
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
		return errors.Join(err, serr)
	}}
	l, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:445")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.1:445: %v", err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()

	dir := t.TempDir()
	c, err := New(Spec{Protocol: "smb", Tool: ToolTcpdump, Args: []string{"-i", "lo", "-C", "1", "-W", "2"}},
		Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	// A file of an earlier run must not survive into this one.
	capDir := filepath.Join(dir, "smb", "tcpdump")
	os.MkdirAll(capDir, 0o700)
	os.WriteFile(filepath.Join(capDir, "smb.pcap7"), []byte("stale"), 0o600)
	os.WriteFile(filepath.Join(capDir, "notes.txt"), []byte("not tcpdump's"), 0o600)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Stop(context.Background())
	pcap := filepath.Join(capDir, "smb.pcap0")
	waitFor(t, "tcpdump to open its file", func() bool {
		st, err := os.Stat(pcap)
		return err == nil && st.Size() >= 24 && c.State().Running
	})
	if _, err := os.Stat(filepath.Join(capDir, "smb.pcap7")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("stale capture file kept")
	}
	if _, err := os.Stat(filepath.Join(capDir, "notes.txt")); err != nil {
		t.Fatal("a file tcpdump does not write was removed")
	}
	// SMB-port traffic on loopback, until tcpdump has written some of it.
	waitFor(t, "packets in the capture", func() bool {
		conn, err := net.Dial("tcp4", "127.0.0.1:445")
		if err == nil {
			conn.Write([]byte("aod capture test"))
			conn.Close()
		}
		st, err := os.Stat(pcap)
		return err == nil && st.Size() > 200
	})

	r, mem := snapshot(t, c, time.Now().Add(-time.Minute), 1<<20)
	if r.Status != actions.StatusOK || len(r.Files) != 1 || r.Files[0] != "tcpdump/smb.pcap0" {
		t.Fatalf("snapshot %+v", r)
	}
	assertPrivate(t, capDir, "notes.txt")
	got := filepath.Join(t.TempDir(), "snap.pcap")
	os.WriteFile(got, mem.files["tcpdump/smb.pcap0"].Bytes(), 0o600)
	out, err := exec.Command("tcpdump", "-nn", "-r", got).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "127.0.0.1.445") {
		t.Fatalf("tcpdump -r of the snapshot: %v\n%s", err, out)
	}

	// The output limit cuts the copy.
	r, _ = snapshot(t, c, time.Now().Add(-time.Minute), 100)
	if r.Status != actions.StatusOK || !r.Truncated || r.Bytes != 100 {
		t.Fatalf("limited snapshot %+v", r)
	}

	pid := c.State().Pid
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("tcpdump %d still exists after Stop: %v", pid, err)
	}
	if st := c.State(); st.Running || st.Disabled {
		t.Fatalf("state after stop %+v", st)
	}
}

func TestFailingCaptureIsDisabled(t *testing.T) {
	need(t, "tcpdump")
	log, logs := logtest.New()
	c, err := New(Spec{Protocol: "smb", Tool: ToolTcpdump, Args: []string{"-i", "aodnosuchif0", "-C", "1", "-W", "2"}},
		Options{Dir: t.TempDir(), Logger: log, MaxFailures: 3, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Stop(context.Background())
	waitFor(t, "the capture to be disabled", func() bool { return c.State().Disabled })
	st := c.State()
	if st.Failures != 3 || st.Running || !strings.Contains(st.LastErr, "aodnosuchif0") {
		t.Fatalf("state %+v", st)
	}
	if n := logs.Count("capture failed; restarting"); n != 2 {
		t.Errorf("%d restart logs, want 2", n)
	}
	if n := logs.CountContaining("capture disabled"); n != 1 {
		t.Errorf("%d disable logs, want 1:\n%s", n, logs)
	}
	r, _ := snapshot(t, c, time.Now(), 100)
	if r.Status != actions.StatusFailed || !strings.Contains(r.Error, "disabled after 3 failures") {
		t.Fatalf("snapshot of a disabled capture: %+v", r)
	}
	if err := c.Start(); err == nil {
		t.Fatal("started twice")
	}
}

func TestSymlinkedCaptureDirIsRefused(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	precious := filepath.Join(elsewhere, "smb.pcap0")
	os.WriteFile(precious, []byte("keep"), 0o600)
	os.Mkdir(filepath.Join(dir, "smb"), 0o700)
	os.Symlink(elsewhere, filepath.Join(dir, "smb", "tcpdump"))
	c, err := New(Spec{Protocol: "smb", Tool: ToolTcpdump, Args: []string{"-C", "1", "-W", "2"}},
		Options{Dir: dir, Binary: "/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("start through a symlink: %v", err)
	}
	if b, _ := os.ReadFile(precious); string(b) != "keep" {
		t.Fatal("a file behind the symlink was touched")
	}
}

func TestMissingToolDisablesAtStart(t *testing.T) {
	c, err := New(Spec{Protocol: "smb", Tool: ToolTcpdump, Args: []string{"-C", "1", "-W", "2"}},
		Options{Dir: t.TempDir(), Binary: "/aod/none/tcpdump"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err == nil || !c.State().Disabled {
		t.Fatalf("start without the tool: %v, %+v", err, c.State())
	}
	r, _ := snapshot(t, c, time.Now(), 100)
	if r.Status != actions.StatusFailed || !strings.Contains(r.Error, "/aod/none/tcpdump") {
		t.Fatalf("snapshot %+v", r)
	}
}

// traceCmdUsable runs trace-cmd itself once on a scratch ftrace instance. Some
// kernels (sandboxes, lockdown) refuse the ftrace control files, and trace-cmd then
// cannot run at all; the reason is returned.
func traceCmdUsable(t *testing.T) string {
	t.Helper()
	need(t, "trace-cmd")
	const probe = "aod_probe"
	out, err := exec.Command("trace-cmd", "start", "-B", probe, "-e", "sched:sched_switch").CombinedOutput()
	defer func() {
		exec.Command("trace-cmd", "reset", "-B", probe, "-d").Run()
		for _, root := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
			os.Remove(filepath.Join(root, "instances", probe))
		}
	}()
	if err != nil {
		return "trace-cmd cannot run on this kernel: " + err.Error() + ": " + strings.TrimSpace(string(out))
	}
	return ""
}

func TestTraceCmdCapturesAndSnapshots(t *testing.T) {
	if reason := traceCmdUsable(t); reason != "" {
		t.Skip(reason)
	}
	dir := t.TempDir()
	c, err := New(Spec{Protocol: "smb", Tool: ToolTraceCmd, Args: []string{"-e", "sched:sched_switch", "-b", "256"}},
		Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Stop(context.Background())
	waitFor(t, "trace-cmd to start", func() bool { return c.State().Running || c.State().Failures > 0 })
	if st := c.State(); !st.Running {
		t.Fatalf("state %+v", st)
	}
	r, mem := snapshot(t, c, time.Now().Add(-time.Minute), 64<<20)
	if r.Status != actions.StatusOK || !slices.Equal(r.Files, []string{"trace-cmd/trace.dat"}) {
		t.Fatalf("snapshot %+v", r)
	}
	assertPrivate(t, dir)
	dat := filepath.Join(t.TempDir(), "trace.dat")
	os.WriteFile(dat, mem.files["trace-cmd/trace.dat"].Bytes(), 0o600)
	out, err := exec.Command("trace-cmd", "report", "-i", dat).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "sched_switch") {
		t.Fatalf("trace-cmd report: %v\n%.2000s", err, out)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(filepath.Join(root, "instances", "aod_smb")); err == nil {
			t.Fatalf("ftrace instance left in %s after Stop", root)
		}
	}
}

func TestTraceCmdFailureIsDisabled(t *testing.T) {
	need(t, "trace-cmd")
	log, logs := logtest.New()
	c, err := New(Spec{Protocol: "nfs", Tool: ToolTraceCmd, Args: []string{"-e", "aod_no_such_event"}},
		Options{Dir: t.TempDir(), Logger: log, MaxFailures: 2, MinBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Stop(context.Background())
	waitFor(t, "the capture to be disabled", func() bool { return c.State().Disabled })
	if st := c.State(); st.Failures != 2 || !strings.Contains(st.LastErr, "trace-cmd start") {
		t.Fatalf("state %+v", st)
	}
	if logs.CountContaining("capture disabled") != 1 {
		t.Fatalf("logs:\n%s", logs)
	}
}

func FuzzTcpdumpCommandLine(f *testing.F) {
	f.Add("-s 65536 -B 10240 -C 2 -W 100")
	f.Add("-nnC 2 -W100 -- host srv")
	f.Add("-C 2 -W 3 --interface=lo port 445")
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		if captureargs.Validate(ToolTcpdump, args) != nil {
			return
		}
		// Whatever passes builds a command line that starts with aod's own options
		// and keeps every user argument in order.
		tc, err := newTcpdump(Spec{Protocol: "smb", Tool: ToolTcpdump, Args: args}, "/cap")
		if err != nil {
			t.Fatalf("valid args %q refused by the command builder: %v", args, err)
		}
		start := slices.Index(tc.argv, "/cap/smb.pcap") + 1
		if start != 5 || !slices.Equal(tc.argv[start:start+len(args)], args) &&
			!slices.Equal(tc.argv[start+2:start+2+len(args)], args) {
			t.Fatalf("argv %q for args %q", tc.argv, args)
		}
	})
}
