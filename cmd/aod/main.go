// Command aod is the always-on diagnostics agent for Linux SMB clients, and the tool
// that checks, shows and migrates its configuration. Run `aod help` for usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/linuxdiag/aod/internal/logging"
	"github.com/linuxdiag/aod/internal/version"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // invalid configuration, runtime error
	exitUsage   = 2 // bad command line
)

const usageText = `Usage: aod [global flags] <command> [arguments]

aod watches the Linux SMB client's requests with eBPF, exports latency and error
metrics over OpenTelemetry, and collects a diagnostic bundle when an anomaly fires.

Commands:
  run [--config FILE]       run the agent (without --config: the embedded default,
                            configs/aod.yaml); --shutdown-timeout (default 20s)
                            bounds its clean stop
  top [--config FILE]       live view of slow and failed SMB requests, from the
                            running agent or, when none runs, from its own probes
  snapshot                  ask the running agent for a diagnostic bundle now
  upload status [--json]    print the running agent's upload queue
  upload validate [--config FILE]
                            check the upload destinations of a configuration: build
                            each client and store a small probe object
  config validate FILE      check a configuration file and print every problem
  config show [FILE]        print the effective configuration, every default
                            included (without FILE: the embedded default)
  config migrate FILE       print an AODv2 2025-form configuration in the 2026 form
  version                   print the version, commit and Go version
  help                      print this help

Global flags (accepted before or after the command):
  --log-format FORMAT       text or json (default text)
  --log-level LEVEL         debug, info, warn or error (default info)

Exit status: 0 success, 1 failure (such as an invalid configuration), 2 usage error,
128+N stopped by signal N (130: SIGINT, 143: SIGTERM). SIGINT or SIGTERM stops run
and top cleanly (exit 0); a second one, or top still blocked 2s later, exits at once.
The configuration is described in docs/configuration.md.
`

func main() {
	in := notifyInterrupt(os.Stderr, os.Exit)
	in.exit(aod(in.ctx, os.Args[1:], os.Stdout, os.Stderr), "")
}

// globals are the flags every command accepts.
type globals struct {
	logFormat, logLevel string
}

// register adds the global flags to a command's flag set. The current values are the
// defaults, so that flags given before the command survive its own parsing.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.logFormat, "log-format", g.logFormat, "log format: "+logging.Formats)
	fs.StringVar(&g.logLevel, "log-level", g.logLevel, "log level: "+logging.Levels)
}

func (g *globals) logger(w io.Writer) (*slog.Logger, error) {
	return logging.New(w, g.logFormat, g.logLevel)
}

// cli carries what every command needs.
type cli struct {
	stdout, stderr io.Writer
	globals
}

// usageError reports a bad command line: the problem, then where to find usage.
func (c *cli) usageError(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "aod: "+format+"\n", args...)
	fmt.Fprintln(c.stderr, "Run 'aod help' for usage.")
	return exitUsage
}

// newFlags returns a flag set for a command that reports errors through c, with the
// global flags registered.
func (c *cli) newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	c.register(fs)
	return fs
}

// parse parses a command's flags; done is true when the command must stop with code.
func (c *cli) parse(fs *flag.FlagSet, args []string) (code int, done bool) {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(c.stdout, usageText)
		return exitOK, true
	case err != nil:
		return c.usageError("%v", err), true
	}
	if _, err := c.logger(io.Discard); err != nil {
		return c.usageError("%v", err), true
	}
	return 0, false
}

// aod runs the command line args and returns the exit code. ctx stops `aod run`.
func aod(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr, globals: globals{logFormat: "text", logLevel: "info"}}
	fs := c.newFlags("aod")
	if code, done := c.parse(fs, args); done {
		return code
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
	cmd, rest := rest[0], rest[1:]
	setGrace(ctx, cmd)
	switch cmd {
	case "run":
		return c.run(ctx, rest)
	case "config":
		return c.config(rest)
	case "top":
		return c.top(ctx, rest)
	case "snapshot":
		return c.snapshot(ctx, rest)
	case "upload":
		return c.upload(ctx, rest)
	case "version":
		if code, done := c.parse(c.newFlags("version"), rest); done {
			return code
		}
		fmt.Fprintln(stdout, version.String())
		return exitOK
	case "help":
		fmt.Fprint(stdout, usageText)
		return exitOK
	}
	return c.usageError("unknown command %q; commands: run, top, snapshot, upload, config, version, help", cmd)
}
