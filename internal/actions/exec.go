package actions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// systemPath is where programs are looked up. A root daemon does not trust the PATH
// of whoever started it.
var systemPath = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// killGrace is how long a killed program may take to exit before it is abandoned. A
// process stuck in uninterruptible sleep (a cifs call on a dead server without a
// killable wait) ignores SIGKILL; the action must still end.
const killGrace = 2 * time.Second

// stderrTail is how much of a program's standard error is kept in its Result.
const stderrTail = 2048

// LookPath finds name in the standard system directories, or checks it as given when
// it contains a slash.
func LookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, executable(name)
	}
	for _, dir := range systemPath {
		p := filepath.Join(dir, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

func executable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not executable", p)
	}
	return nil
}

func (e *Env) lookPath(name string) (string, error) {
	if e.LookPath != nil {
		return e.LookPath(name)
	}
	return LookPath(name)
}

// Command returns an action that runs argv (no shell) and stores its standard
// output as member file.
func Command(name, file string, argv ...string) Action {
	return Action{Name: name, Run: func(ctx context.Context, env *Env, out *Output, r *Result) error {
		w, err := out.Create(file)
		if err != nil {
			return err
		}
		return runCommand(ctx, env, w, r, argv...)
	}}
}

// runCommand runs argv in its own process group with standard output copied to w
// and the tail of standard error kept in r.Stderr. When ctx ends or w reaches the
// output limit the whole group is killed; a program that will not die is abandoned
// after killGrace so the action still ends. A program that is not installed is a
// skip.
func runCommand(ctx context.Context, env *Env, w io.Writer, r *Result, argv ...string) error {
	path, err := env.lookPath(argv[0])
	if err != nil {
		return Skip("%s is not installed", argv[0])
	}
	r.Command = argv
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	defer pr.Close()
	stderr := NewTailWriter(stderrTail)
	cmd := exec.Command(path, argv[1:]...)
	cmd.Env = []string{"PATH=" + strings.Join(systemPath, ":"), "LC_ALL=C", "TZ=UTC", "SYSTEMD_COLORS=0", "SYSTEMD_PAGER="}
	cmd.Stdout, cmd.Stderr = pw, stderr
	cmd.SysProcAttr = ProcAttr()
	cmd.WaitDelay = killGrace
	err = Start(cmd)
	pw.Close()
	if err != nil {
		return fmt.Errorf("start %s: %w", argv[0], err)
	}
	pgid := cmd.Process.Pid
	kill := func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) }
	stop := context.AfterFunc(ctx, func() {
		kill()
		// Unblock the copy below even if the group cannot die.
		_ = pr.SetReadDeadline(time.Now().Add(killGrace))
	})
	defer stop()

	_, copyErr := io.Copy(w, pr)
	if errors.Is(copyErr, ErrLimit) {
		kill()
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var waitErr error
	select {
	case waitErr = <-waited:
	case <-ctx.Done():
		select {
		case waitErr = <-waited:
		case <-time.After(killGrace):
			r.Stderr = stderr.String()
			return fmt.Errorf("%s did not exit within %s of SIGKILL (uninterruptible sleep?); abandoned", argv[0], killGrace)
		}
	}
	r.Stderr = stderr.String()
	if ps := cmd.ProcessState; ps != nil {
		code := ps.ExitCode()
		r.ExitCode = &code
	}
	switch {
	case copyErr != nil:
		return copyErr
	case ctx.Err() != nil:
		return ctx.Err()
	case waitErr != nil:
		return fmt.Errorf("%s: %w", argv[0], waitErr)
	}
	return nil
}

// TailWriter keeps the last bytes written to it (a program's standard error), safe
// for one writer and concurrent readers.
type TailWriter struct {
	mu  sync.Mutex
	max int
	b   []byte
}

// NewTailWriter keeps the last n bytes.
func NewTailWriter(n int) *TailWriter { return &TailWriter{max: n} }

// Write appends p, dropping the oldest bytes beyond the limit.
func (t *TailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// String returns the kept bytes without surrounding white space.
func (t *TailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}
