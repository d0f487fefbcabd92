package capture

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/linuxdiag/aod/internal/actions"
	"github.com/linuxdiag/aod/internal/captureargs"
)

// Spec is one capture: a tool run for a protocol with the user's arguments.
type Spec struct {
	Protocol string // "smb", "nfs"
	Tool     string // ToolTcpdump or ToolTraceCmd
	Args     []string
}

// Options tune how captures are run and supervised. Zero values take the defaults.
type Options struct {
	// Dir holds the captures' files, in <Dir>/<protocol>/<tool>/ (mode 0700).
	Dir    string
	Logger *slog.Logger
	// MaxFailures consecutive failures disable the capture (default 5).
	MaxFailures int
	// MinBackoff and MaxBackoff bound the wait before a restart, which doubles with
	// each consecutive failure (defaults 1 s and 5 min).
	MinBackoff, MaxBackoff time.Duration
	// StableAfter is how long a run must last for its end to count as a fresh
	// failure rather than one more of a series (default 1 min).
	StableAfter time.Duration
	// Binary overrides the program path; empty looks the tool up in the system
	// directories.
	Binary string
	// CommandTimeout bounds the short trace-cmd commands (start, reset), default 30 s.
	CommandTimeout time.Duration
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxFailures <= 0 {
		o.MaxFailures = 5
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Minute, o.MinBackoff)
	}
	if o.StableAfter <= 0 {
		o.StableAfter = time.Minute
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 30 * time.Second
	}
}

// State is a capture's health, for logs and the manifest.
type State struct {
	Running  bool   // capturing now
	Disabled bool   // given up after MaxFailures consecutive failures
	Failures int    // consecutive failures so far
	Pid      int    // tcpdump's process id while running
	LastErr  string // why the last run ended
}

// Capture is one supervised capture.
type Capture struct {
	spec   Spec
	o      Options
	dir    string
	bin    string
	log    *slog.Logger
	tool   tool
	broken chan error // a snapshot found the capture broken (trace-cmd)

	mu      sync.Mutex
	state   State
	cancel  context.CancelFunc
	done    chan struct{}
	snapMu  sync.Mutex // one snapshot at a time: trace-cmd extract consumes the buffer
	started bool
}

// tool is what differs between tcpdump and trace-cmd.
type tool interface {
	// run captures until ctx ends (returning nil) or the capture breaks.
	run(ctx context.Context, c *Capture) error
	// snapshot writes what the capture holds for the lookback window to out.
	snapshot(ctx context.Context, c *Capture, env *actions.Env, out *actions.Output) error
	// owns reports whether a file of the capture directory is one the tool writes.
	owns(name string) bool
}

// New checks spec and prepares a capture; nothing runs until Start.
func New(spec Spec, o Options) (*Capture, error) {
	o.defaults()
	if err := captureargs.Validate(spec.Tool, spec.Args); err != nil {
		return nil, err
	}
	if spec.Protocol == "" || strings.ContainsAny(spec.Protocol, "/_. ") {
		return nil, fmt.Errorf("capture: invalid protocol %q", spec.Protocol)
	}
	if o.Dir == "" {
		return nil, errors.New("capture: no capture directory")
	}
	c := &Capture{spec: spec, o: o, dir: filepath.Join(o.Dir, spec.Protocol, spec.Tool),
		log:    o.Logger.With("capture", spec.Tool, "protocol", spec.Protocol),
		broken: make(chan error, 1)}
	switch spec.Tool {
	case ToolTcpdump:
		t, err := newTcpdump(spec, c.dir)
		if err != nil {
			return nil, err
		}
		c.tool = t
	case ToolTraceCmd:
		c.tool = traceCmd{instance: "aod_" + spec.Protocol}
	}
	return c, nil
}

// Spec returns what the capture runs.
func (c *Capture) Spec() Spec { return c.spec }

// RunsLike reports whether c and d run the same tool with the same arguments into the
// same directory under the same supervision, so that one can stand in for the other:
// a reload that leaves a capture as it was keeps it running, with its files.
func (c *Capture) RunsLike(d *Capture) bool {
	co, do := c.o, d.o
	co.Logger, do.Logger = nil, nil
	return c.spec.Protocol == d.spec.Protocol && c.spec.Tool == d.spec.Tool &&
		slices.Equal(c.spec.Args, d.spec.Args) && co == do
}

// State returns the capture's health.
func (c *Capture) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Start launches the capture and its supervisor. It returns at once; failures are
// logged and retried in the background. A capture starts only once.
func (c *Capture) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return errors.New("capture: already started")
	}
	bin := cmp.Or(c.o.Binary, c.spec.Tool)
	path, err := actions.LookPath(bin)
	if err != nil {
		c.state = State{Disabled: true, LastErr: err.Error()}
		c.log.Error("capture disabled: tool not installed", "error", err)
		return fmt.Errorf("capture: %w", err)
	}
	c.bin = path
	if err := c.prepareDir(); err != nil {
		c.state = State{Disabled: true, LastErr: err.Error()}
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel, c.done, c.started = cancel, make(chan struct{}), true
	go c.supervise(ctx)
	return nil
}

// prepareDir creates the capture directory (each level 0700, none a symlink: tools
// write there as root) and removes the files of the tool's earlier runs, so the ring
// starts fresh and stale files never reach a bundle. Only files the tool names are
// removed.
func (c *Capture) prepareDir() error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	for _, d := range []string{c.o.Dir, filepath.Dir(c.dir), c.dir} {
		st, err := os.Lstat(d)
		if err != nil {
			return fmt.Errorf("capture: %w", err)
		}
		if !st.IsDir() {
			return fmt.Errorf("capture: %s is not a directory (a symlink is not followed)", d)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return fmt.Errorf("capture: %w", err)
		}
	}
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() && c.tool.owns(e.Name()) {
			if err := os.Remove(filepath.Join(c.dir, e.Name())); err != nil {
				return fmt.Errorf("capture: clear old files: %w", err)
			}
		}
	}
	return nil
}

// Stop ends the capture and waits for it (or for ctx).
func (c *Capture) Stop(ctx context.Context) error {
	c.mu.Lock()
	cancel, done := c.cancel, c.done
	c.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("capture %s/%s: stop: %w", c.spec.Protocol, c.spec.Tool, ctx.Err())
	}
}

func (c *Capture) supervise(ctx context.Context) {
	defer close(c.done)
	backoff := c.o.MinBackoff
	for {
		began := time.Now()
		err := c.tool.run(ctx, c)
		if ctx.Err() != nil {
			c.update(func(s *State) { s.Running, s.Pid = false, 0 })
			c.log.Info("capture stopped")
			return
		}
		if err == nil {
			err = errors.New("capture ended by itself")
		}
		var failures int
		c.update(func(s *State) {
			if time.Since(began) >= c.o.StableAfter {
				s.Failures = 0
				backoff = c.o.MinBackoff
			}
			s.Failures++
			s.Running, s.Pid, s.LastErr = false, 0, err.Error()
			failures = s.Failures
			if s.Failures >= c.o.MaxFailures {
				s.Disabled = true
			}
		})
		if failures >= c.o.MaxFailures {
			c.log.Error("capture disabled after repeated failures; fix its arguments or the host and restart aod",
				"failures", failures, "args", c.spec.Args, "error", err)
			return
		}
		c.log.Warn("capture failed; restarting", "failures", failures, "backoff", backoff, "error", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, c.o.MaxBackoff)
	}
}

func (c *Capture) update(f func(*State)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.state)
}

// Action returns the bundle action that snapshots this capture; it is named after
// the tool, as in the configuration's action lists.
func (c *Capture) Action() actions.Action {
	return actions.Action{Name: c.spec.Tool, Run: func(ctx context.Context, env *actions.Env, out *actions.Output, r *actions.Result) error {
		r.Source = c.dir
		st := c.State()
		switch {
		case st.Disabled:
			return fmt.Errorf("capture disabled after %d failures: %s", st.Failures, st.LastErr)
		case !st.Running:
			return fmt.Errorf("capture not running (%d failures so far, last: %s)", st.Failures, st.LastErr)
		}
		c.snapMu.Lock()
		defer c.snapMu.Unlock()
		return c.tool.snapshot(ctx, c, env, out)
	}}
}

// startProcess starts argv in its own process group and returns it with a tail of its
// standard error.
func (c *Capture) startProcess(argv []string) (*exec.Cmd, *actions.TailWriter, error) {
	stderr := actions.NewTailWriter(2048)
	cmd := exec.Command(c.bin, argv...)
	cmd.Dir = c.dir
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	cmd.Stderr = stderr
	cmd.SysProcAttr = actions.ProcAttr()
	cmd.WaitDelay = 5 * time.Second
	if err := actions.Start(cmd); err != nil {
		return nil, nil, err
	}
	return cmd, stderr, nil
}

// runShort runs a trace-cmd subcommand to completion within the command timeout.
func (c *Capture) runShort(ctx context.Context, argv ...string) error {
	ctx, cancel := context.WithTimeout(ctx, c.o.CommandTimeout)
	defer cancel()
	cmd, stderr, err := c.startProcess(argv)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	defer stop()
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("%s %s: %w: %s", c.spec.Tool, argv[0], err, stderr.String())
	}
	return nil
}

// copyFile copies the first size bytes of the file at path (opened without following
// symlinks) to member name of out, as much as the output limit allows.
func copyFile(ctx context.Context, out *actions.Output, name, path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := out.Create(name)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err = io.Copy(w, io.NewSectionReader(f, 0, size))
	return err
}

// newestFirst sorts directory entries by modification time, newest first.
func newestFirst(infos []os.FileInfo) {
	slices.SortFunc(infos, func(a, b os.FileInfo) int { return b.ModTime().Compare(a.ModTime()) })
}
