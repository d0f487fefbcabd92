package capture

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/linuxdiag/aod/internal/actions"
	"github.com/linuxdiag/aod/internal/captureargs"
)

// defaultFilters restrict a capture to the protocol's traffic when the user's
// arguments carry no filter expression of their own.
var defaultFilters = map[string][]string{
	"smb": {"tcp", "port", "445"},
	"nfs": {"port", "2049"},
}

// stopGrace is how long tcpdump gets to flush after SIGTERM before SIGKILL.
const stopGrace = 5 * time.Second

// tcpdump runs one long-lived tcpdump writing a ring of files (-C/-W from the user's
// arguments) into the capture directory.
type tcpdump struct {
	base string   // the -w file name; tcpdump appends the ring index
	argv []string // without the program
}

func newTcpdump(spec Spec, dir string) (tcpdump, error) {
	o, probs := captureargs.Check(spec.Tool, spec.Args)
	if len(probs) > 0 {
		return tcpdump{}, captureargs.Validate(spec.Tool, spec.Args)
	}
	base := spec.Protocol + ".pcap"
	// -Z root keeps the privileges needed to open each new file of the ring in a
	// root-only directory; -U writes every packet at once, so a snapshot holds the
	// packets up to the anomaly rather than up to the last full buffer.
	argv := []string{"-Z", "root", "-U", "-w", filepath.Join(dir, base)}
	if !o.Options["-i"] {
		argv = append(argv, "-i", "any")
	}
	argv = append(argv, spec.Args...)
	if len(o.Operands) == 0 {
		argv = append(argv, defaultFilters[spec.Protocol]...)
	}
	return tcpdump{base: base, argv: argv}, nil
}

func (t tcpdump) owns(name string) bool { return strings.HasPrefix(name, t.base) }

func (t tcpdump) run(ctx context.Context, c *Capture) error {
	cmd, stderr, err := c.startProcess(t.argv)
	if err != nil {
		return fmt.Errorf("start tcpdump: %w", err)
	}
	pid := cmd.Process.Pid
	c.update(func(s *State) { s.Running, s.Pid = true, pid })
	c.log.Info("capture started", "pid", pid, "argv", t.argv)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err == nil {
			err = errors.New("exit status 0")
		}
		return fmt.Errorf("tcpdump exited: %w: %s", err, stderr.String())
	case <-ctx.Done():
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		select {
		case <-waited:
		case <-time.After(stopGrace):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-waited
		}
		return nil
	}
}

// snapshot copies the ring's files that cover the lookback window, newest first, so
// that when the output limit cuts the copy it is the oldest packets that are left
// out. The file being written is copied up to its size at that moment.
func (t tcpdump) snapshot(ctx context.Context, c *Capture, env *actions.Env, out *actions.Output) error {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return err
	}
	var files []os.FileInfo
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), t.base) {
			continue
		}
		if info, err := e.Info(); err == nil {
			files = append(files, info)
		}
	}
	if len(files) == 0 {
		return errors.New("tcpdump has written no capture file yet")
	}
	newestFirst(files)
	for i, f := range files {
		if i > 0 && f.ModTime().Before(env.Since) {
			break
		}
		err := copyFile(ctx, out, ToolTcpdump+"/"+f.Name(), filepath.Join(c.dir, f.Name()), f.Size())
		if errors.Is(err, os.ErrNotExist) {
			continue // rotated away between listing and opening
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// traceCmd keeps ftrace recording the user's events into the kernel ring buffer of
// an instance of its own (trace-cmd start -B), so nothing runs in user space between
// anomalies and the top-level tracing other tools use is untouched. A snapshot
// extracts the buffer into a trace.dat file.
type traceCmd struct {
	instance string
}

// extractPrefix names the files a snapshot extracts into before copying them.
const extractPrefix = "extract-"

func (traceCmd) owns(name string) bool { return strings.HasPrefix(name, extractPrefix) }

func (t traceCmd) run(ctx context.Context, c *Capture) error {
	// However it ends, remove the instance (a failed start may already have made
	// it): its events stop and its buffer is freed.
	defer func() {
		if err := c.runShort(context.Background(), "reset", "-B", t.instance, "-d"); err != nil {
			c.log.Warn("could not remove the ftrace instance", "error", err)
		}
	}()
	argv := append([]string{"start", "-B", t.instance}, c.spec.Args...)
	if err := c.runShort(ctx, argv...); err != nil {
		return err
	}
	c.update(func(s *State) { s.Running = true })
	c.log.Info("capture started", "instance", t.instance, "args", c.spec.Args)
	select {
	case <-ctx.Done():
		return nil
	case err := <-c.broken:
		return err
	}
}

func (t traceCmd) snapshot(ctx context.Context, c *Capture, _ *actions.Env, out *actions.Output) error {
	tmp := filepath.Join(c.dir, fmt.Sprintf("%s%d.dat", extractPrefix, time.Now().UnixNano()))
	defer removeWithSiblings(tmp)
	if err := c.runShort(ctx, "extract", "-B", t.instance, "-o", tmp); err != nil {
		if ctx.Err() == nil {
			// The instance is gone or broken: have the supervisor start it again.
			select {
			case c.broken <- err:
			default:
			}
		}
		return err
	}
	st, err := os.Lstat(tmp)
	if err != nil {
		return err
	}
	return copyFile(ctx, out, ToolTraceCmd+"/trace.dat", tmp, st.Size())
}

// removeWithSiblings deletes path and the per-CPU temporaries trace-cmd creates
// beside it.
func removeWithSiblings(path string) {
	matches, _ := filepath.Glob(path + "*")
	for _, m := range matches {
		_ = os.Remove(m)
	}
}
