// Package actions implements aod's quick actions: the bounded, killable collections
// (kernel log, journal, /proc/fs/cifs files, sockets, in-flight requests, ...) that
// go into a diagnostic bundle when an anomaly fires. An action never uses a shell,
// runs under a timeout, writes at most its output limit, and always ends in a
// recorded Result: a missing tool or file is a skip, a hang is a timeout, and neither
// stops the other actions.
package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"sync"
	"time"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/anomaly"
)

// Status is how an action ended.
type Status string

// Statuses of a Result.
const (
	StatusOK       Status = "ok"
	StatusFailed   Status = "failed"
	StatusTimeout  Status = "timeout"  // killed at its timeout; the output up to then is kept
	StatusSkipped  Status = "skipped"  // its source does not exist on this host
	StatusCanceled Status = "canceled" // the agent was shutting down
)

// Result is the recorded outcome of one action run, as the bundle manifest lists it.
type Result struct {
	Name      string        `json:"name"`
	Command   []string      `json:"command,omitempty"` // argv of the program run, if any
	Source    string        `json:"source,omitempty"`  // the file or interface read, where that says more
	Files     []string      `json:"files,omitempty"`   // members written to the bundle
	Status    Status        `json:"status"`
	ExitCode  *int          `json:"exit_code,omitempty"`
	Start     time.Time     `json:"start"`
	Duration  time.Duration `json:"-"`
	Bytes     int64         `json:"bytes"`
	Truncated bool          `json:"truncated,omitempty"` // the output limit was reached
	Error     string        `json:"error,omitempty"`
	Skipped   string        `json:"skipped_reason,omitempty"`
	Stderr    string        `json:"stderr,omitempty"` // the tail of a program's standard error
}

// MarshalJSON writes the duration in seconds, the unit the rest of aod's output uses.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	return json.Marshal(struct {
		plain
		DurationS float64 `json:"duration_s"`
	}{plain(r), r.Duration.Seconds()})
}

// InflightFunc returns the requests the kernel has started and not yet completed (the
// BPF start map), as (*bpf.Probes).InFlight reads them.
type InflightFunc func(ctx context.Context) ([]bpf.InFlightRequest, error)

// Env is what actions know about the collection they are part of.
type Env struct {
	Anomaly *anomaly.Anomaly
	// Since and Until bound the lookback window of time-filtered sources (kernel log,
	// journal).
	Since, Until time.Time
	// Inflight reads the kernel's start map; nil when BPF is not loaded.
	Inflight InflightFunc
	// LookPath finds a program; nil searches the standard system directories. Tests
	// use it to simulate a missing tool.
	LookPath func(name string) (string, error)
}

// Action is one named collection.
type Action struct {
	Name string
	// Run writes the action's files to out and fills in what it knows of r (Command,
	// Source, ExitCode, Stderr). It returns Skip for a source this host lacks. It must
	// return promptly once ctx is done.
	Run func(ctx context.Context, env *Env, out *Output, r *Result) error
}

// Table maps action names, as the configuration spells them, to actions.
type Table map[string]Action

// skipError marks an action whose source is absent.
type skipError struct{ reason string }

func (e *skipError) Error() string { return e.reason }

// Skip reports that the action's source does not exist here; the reason is recorded.
func Skip(format string, args ...any) error {
	return &skipError{reason: fmt.Sprintf(format, args...)}
}

// ErrLimit is returned by an Output's writers once the action's output limit is
// reached. Run records it as truncation, not failure.
var ErrLimit = errors.New("actions: output limit reached")

// Output collects the files of one action run, together bounded by a byte limit.
// It is safe for the action and the runner at once: once the runner seals it (at
// the action's end, or when abandoning an action that would not stop), nothing more
// is created or written, so the runner can read the files without racing.
type Output struct {
	create    func(name string) (io.Writer, error)
	mu        sync.Mutex
	limit     int64
	n         int64
	truncated bool
	sealed    bool
	files     []string
}

// NewOutput returns an Output that stores each file through create and cuts the
// action's total output at limit bytes.
func NewOutput(limit int64, create func(name string) (io.Writer, error)) *Output {
	return &Output{create: create, limit: limit}
}

// errSealed is returned to an abandoned action that still tries to write.
var errSealed = errors.New("actions: output closed: the action was abandoned")

// Create starts a file, named by a slash-separated relative path.
func (o *Output) Create(name string) (io.Writer, error) {
	if !fs.ValidPath(name) || name == "." {
		return nil, fmt.Errorf("actions: invalid output name %q", name)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.sealed {
		return nil, errSealed
	}
	if slices.Contains(o.files, name) {
		return nil, fmt.Errorf("actions: output %q created twice", name)
	}
	w, err := o.create(name)
	if err != nil {
		return nil, err
	}
	o.files = append(o.files, name)
	return &limitedWriter{o: o, w: w}, nil
}

// Remaining is how many bytes the action may still write.
func (o *Output) Remaining() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return max(o.limit-o.n, 0)
}

// MarkTruncated records that the action left out part of its source to stay within
// the limit, when it chose what to leave out itself rather than being cut by a write.
func (o *Output) MarkTruncated() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.truncated = true
}

// seal stops all further creates and writes and returns what was written.
func (o *Output) seal() (files []string, n int64, truncated bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sealed = true
	return slices.Clone(o.files), o.n, o.truncated
}

type limitedWriter struct {
	o *Output
	w io.Writer
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	o := l.o
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.sealed {
		return 0, errSealed
	}
	room := max(o.limit-o.n, 0)
	cut := int64(len(p)) > room
	if cut {
		p = p[:room]
	}
	n, err := l.w.Write(p)
	o.n += int64(n)
	if err != nil {
		return n, err
	}
	if cut {
		o.truncated = true
		return n, ErrLimit
	}
	return n, nil
}

// AbandonGrace is how long an action may overrun its timeout (or its context) before
// it is abandoned: Run returns at most this long after either. It exceeds killGrace,
// so a program run by an action is killed and accounted for by the action itself
// whenever the kernel lets it die.
const AbandonGrace = killGrace + time.Second

// Run runs a with a timeout and records how it went. It returns within the timeout
// plus AbandonGrace even if the action ignores its context (a read stuck in the
// kernel): the action is then abandoned, its output sealed and kept as it was. It
// never panics: a panicking action is recorded as failed, so one bug cannot cost the
// rest of the bundle. The caller may read out's files once Run has returned.
func Run(ctx context.Context, a Action, env *Env, out *Output, timeout time.Duration) Result {
	r := Result{Name: a.Name, Start: time.Now()}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var own Result // the action's view; read only if it returned
	done := make(chan error, 1)
	go func() { done <- protect(func() error { return a.Run(actx, env, out, &own) }) }()
	var err error
	abandoned := false
	select {
	case err = <-done:
	case <-actx.Done():
		t := time.NewTimer(AbandonGrace)
		select {
		case err = <-done:
		case <-t.C:
			abandoned = true
		}
		t.Stop()
	}
	r.Files, r.Bytes, r.Truncated = out.seal()
	r.Duration = time.Since(r.Start)
	if !abandoned {
		r.Command, r.Source, r.ExitCode, r.Stderr = own.Command, own.Source, own.ExitCode, own.Stderr
	} else {
		err = errors.New("the action did not stop and was abandoned")
	}
	var skip *skipError
	switch {
	case errors.As(err, &skip):
		r.Status, r.Skipped = StatusSkipped, skip.reason
	case ctx.Err() != nil:
		r.Status, r.Error = StatusCanceled, describe(Canceled(ctx), err)
	case actx.Err() != nil:
		r.Status, r.Error = StatusTimeout, describe(fmt.Sprintf("timed out after %s", timeout), err)
	case err != nil && !errors.Is(err, ErrLimit):
		r.Status, r.Error = StatusFailed, err.Error()
	default:
		r.Status = StatusOK
	}
	return r
}

// Canceled says why ctx is done: "canceled", with the cause when one was given
// (context.WithTimeoutCause), for the record of an action that was cut off.
func Canceled(ctx context.Context) string {
	c := context.Cause(ctx)
	if c == nil || errors.Is(c, context.Canceled) || errors.Is(c, context.DeadlineExceeded) {
		return "canceled"
	}
	return "canceled: " + c.Error()
}

func describe(what string, err error) string {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return what
	}
	return what + ": " + err.Error()
}

func protect(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("action panicked: %v", p)
		}
	}()
	return f()
}
