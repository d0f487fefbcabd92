package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SIGINT and SIGTERM cancel the command's context, with an *interrupted as its
// cause: `aod run` then stops the agent cleanly, `aod top` prints its last summary,
// `aod snapshot` gives up waiting. A command is ended outright (exit 128+signal,
// the signal named on stderr) when it has nothing to clean up (the config commands:
// a large file or a full pipe must not keep them), when it has not returned within
// its grace after the signal (top blocked writing to a pipe nobody reads), or on a
// second signal (an agent whose shutdown hangs).

// Graces between the first signal and the forced exit.
const (
	noGrace       = 0
	shortGrace    = 2 * time.Second
	untilNextStop = -1 // only a second signal forces the exit
)

// commandGrace is each command's grace; a command not listed has none.
var commandGrace = map[string]time.Duration{
	"run":      untilNextStop,
	"top":      shortGrace,
	"snapshot": shortGrace,
}

// interrupted is the cause of a context cancelled by a signal.
type interrupted struct{ sig syscall.Signal }

func (e *interrupted) Error() string { return "interrupted by " + unix.SignalName(e.sig) }

// exitCode is the shell's convention for a process ended by the signal.
func (e *interrupted) exitCode() int { return 128 + int(e.sig) }

// interrupter turns SIGINT and SIGTERM into the cancellation of ctx and, if need be,
// the exit of the process.
type interrupter struct {
	ctx    context.Context
	sigs   chan os.Signal
	grace  atomic.Int64 // time.Duration of the running command
	stderr io.Writer
	osExit func(int)
	once   sync.Once
}

type interrupterKey struct{}

// notifyInterrupt starts handling SIGINT and SIGTERM. osExit ends the process.
func notifyInterrupt(stderr io.Writer, osExit func(int)) *interrupter {
	ctx, cancel := context.WithCancelCause(context.Background())
	in := &interrupter{sigs: make(chan os.Signal, 2), stderr: stderr, osExit: osExit}
	in.ctx = context.WithValue(ctx, interrupterKey{}, in)
	signal.Notify(in.sigs, os.Interrupt, syscall.SIGTERM)
	go in.handle(cancel)
	return in
}

// stop unregisters the handler; later signals have their default effect.
func (in *interrupter) stop() { signal.Stop(in.sigs) }

func (in *interrupter) handle(cancel context.CancelCauseFunc) {
	first := &interrupted{(<-in.sigs).(syscall.Signal)}
	cancel(first)
	var timeout <-chan time.Time
	switch grace := time.Duration(in.grace.Load()); {
	case grace == noGrace:
		in.exit(first.exitCode(), "aod: "+first.Error())
		return
	case grace > 0:
		timeout = time.After(grace)
	}
	select {
	case s := <-in.sigs:
		second := &interrupted{s.(syscall.Signal)}
		in.exit(second.exitCode(), fmt.Sprintf("aod: %s again: exiting without waiting for a clean stop", unix.SignalName(second.sig)))
	case <-timeout:
		in.exit(first.exitCode(), fmt.Sprintf("aod: %s: not stopped within %v; exiting", first.Error(), time.Duration(in.grace.Load())))
	}
}

// exit ends the process with code, once, after writing msg (if any) to stderr. A
// stderr nobody reads does not hold the exit up for more than a second.
func (in *interrupter) exit(code int, msg string) {
	in.once.Do(func() {
		if msg != "" {
			written := make(chan struct{})
			go func() {
				fmt.Fprintln(in.stderr, msg)
				close(written)
			}()
			select {
			case <-written:
			case <-time.After(time.Second):
			}
		}
		in.osExit(code)
	})
}

// setGrace records the grace of the command ctx runs, when an interrupter handles
// its signals.
func setGrace(ctx context.Context, cmd string) {
	if in, ok := ctx.Value(interrupterKey{}).(*interrupter); ok {
		in.grace.Store(int64(commandGrace[cmd]))
	}
}

// interruptedBy returns the signal that cancelled ctx, if one did.
func interruptedBy(ctx context.Context) (*interrupted, bool) {
	e, ok := context.Cause(ctx).(*interrupted)
	return e, ok
}
