package main

import (
	"context"
	"fmt"

	"github.com/linuxdiag/aod/internal/control"
)

// snapshot is `aod snapshot`: the running agent writes a bundle with every quick
// action now, and its path is printed.
func (c *cli) snapshot(ctx context.Context, args []string) int {
	fs := c.newFlags("snapshot")
	sock := fs.String("control-socket", control.DefaultPath, "the running agent's control socket")
	if code, done := c.parse(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return c.usageError("snapshot takes no arguments, got %q", fs.Args())
	}
	path, err := control.Snapshot(ctx, *sock)
	if sig, ok := interruptedBy(ctx); ok && err != nil {
		fmt.Fprintf(c.stderr, "aod: snapshot: %v before the agent replied; the bundle, if written, is in its output directory\n", sig)
		return sig.exitCode()
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "aod: snapshot: %v\n", err)
		return exitFailure
	}
	fmt.Fprintln(c.stdout, path)
	return exitOK
}
