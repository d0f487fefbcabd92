package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	// The tables name shares as their protocols do (Record.Where).
	"github.com/linuxdiag/aod/bpf"
	_ "github.com/linuxdiag/aod/internal/nfs"
	_ "github.com/linuxdiag/aod/internal/smb"
)

func listen(t *testing.T, snap SnapshotFunc) (*Server, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "aod.sock")
	s, err := Listen(path, snap, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestSnapshotRoundTrip(t *testing.T) {
	_, path := listen(t, func(context.Context) (string, error) { return "/var/log/aod/batches/x.tar.zst", nil })
	got, err := Snapshot(context.Background(), path)
	if err != nil || got != "/var/log/aod/batches/x.tar.zst" {
		t.Fatalf("Snapshot = %q, %v", got, err)
	}
}

func TestSnapshotErrorIsReported(t *testing.T) {
	_, path := listen(t, func(context.Context) (string, error) { return "", errors.New("disk full") })
	if _, err := Snapshot(context.Background(), path); err == nil || err.Error() != "disk full" {
		t.Fatalf("err = %v", err)
	}
}

func TestNoAgent(t *testing.T) {
	_, err := Snapshot(context.Background(), filepath.Join(t.TempDir(), "none.sock"))
	if !errors.Is(err, ErrNoAgent) {
		t.Fatalf("err = %v, want ErrNoAgent", err)
	}
}

// TestSecondAgentRefused: the socket's owner answers, so a second Listen is refused
// with ErrAgentRunning and the pid of the process listening (this one).
func TestSecondAgentRefused(t *testing.T) {
	_, path := listen(t, nil)
	_, err := Listen(path, nil, slog.New(slog.DiscardHandler))
	if !errors.Is(err, ErrAgentRunning) || !strings.Contains(err.Error(), fmt.Sprintf("(pid %d)", os.Getpid())) {
		t.Fatalf("err = %v, want ErrAgentRunning naming pid %d", err, os.Getpid())
	}
}

// Only a dead agent's socket is replaced: a file, a directory or a pipe at the path is
// someone else's and stays as it was.
func TestOnlyAStaleSocketIsReplaced(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(file, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{file, dir, fifo} {
		_, err := Listen(path, nil, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), "something other than a socket is there") {
			t.Errorf("%s: err = %v", path, err)
		}
	}
	if data, err := os.ReadFile(file); err != nil || string(data) != "keep me" {
		t.Errorf("the file changed: %q, %v", data, err)
	}

	// A socket nobody listens on (its agent died) is replaced.
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	s, err := Listen(stale, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	s.Close()
}

func TestWatchReceivesPublishedRecords(t *testing.T) {
	s, path := listen(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan Record, 10)
	done := make(chan error, 1)
	wantHooks := []bpf.HookStatus{
		{Protocol: "smb", Hook: "smb3_cmd_enter", Attached: true},
		{Protocol: "smb", Hook: "smb3_connect_done", Reason: "not in this kernel: no such file or directory"},
	}
	s.SetHooks(func() []bpf.HookStatus { return wantHooks })
	hooks := make(chan []bpf.HookStatus, 1)
	go func() { done <- Watch(ctx, path, func(h []bpf.HookStatus) { hooks <- h }, func(r Record) { got <- r }) }()
	if h := <-hooks; !slices.Equal(h, wantHooks) {
		t.Errorf("the watch opened with hooks %+v, want %+v", h, wantHooks)
	}
	waitWatching(t, s)
	s.Publish(Record{Kind: "slow", Command: "SMB2_READ", Latency: 0.25, Process: "cp", PID: 7})
	r := <-got
	if r.Command != "SMB2_READ" || r.Latency != 0.25 || r.Process != "cp" || r.PID != 7 {
		t.Fatalf("record = %+v", r)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Watch = %v", err)
	}
}

func TestSlowWatcherNeverBlocksPublisher(t *testing.T) {
	s, path := listen(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	block := make(chan struct{})
	first := make(chan Record, 1)
	go Watch(ctx, path, nil, func(r Record) {
		select {
		case first <- r:
		default:
		}
		<-block
	})
	waitWatching(t, s)
	// Far more than the queue holds: Publish must return regardless.
	for i := 0; i < 10*watcherQueue; i++ {
		s.Publish(Record{Kind: "slow"})
	}
	<-first
	close(block)
}

func TestUnknownOp(t *testing.T) {
	_, path := listen(t, nil)
	c, err := dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(`{"op":"reboot"}` + "\n"))
	buf := make([]byte, 256)
	n, _ := c.Read(buf)
	if !strings.Contains(string(buf[:n]), `unknown op \"reboot\"`) {
		t.Fatalf("reply = %s", buf[:n])
	}
}

// waitWatching waits until a watcher is registered: a record published before that
// would rightly be lost.
func waitWatching(t *testing.T, s *Server) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !s.Watching() {
		if time.Now().After(deadline) {
			t.Fatal("watcher never registered")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSocketIsPrivate: the socket, and the directory made for it, are root's only,
// whatever the umask aod was started with.
func TestSocketIsPrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "run", "aod")
	path := filepath.Join(dir, "aod.sock")
	s, err := Listen(path, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for p, want := range map[string]os.FileMode{path: os.ModeSocket | 0o600, dir: os.ModeDir | 0o700} {
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, st.Mode(), want)
		}
	}
}

// A record names where its request went as its protocol's users write it.
func TestRecordWhere(t *testing.T) {
	for _, c := range []struct {
		r    Record
		want string
	}{
		{Record{Protocol: "smb", Server: "fs1", Share: "data"}, `\\fs1\data`},
		{Record{Protocol: "nfs", Server: "10.0.0.5", Share: "/srv/nfs"}, "10.0.0.5:/srv/nfs"},
		{Record{Protocol: "nfs", Server: "10.0.0.5"}, "10.0.0.5"},
		{Record{Server: "10.0.0.5", Share: "x"}, "10.0.0.5 x"}, // an older agent sends no protocol
	} {
		if got := c.r.Where(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.r, got, c.want)
		}
	}
}
