package actions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// query is one program run of an action that runs several (one per mount point or
// server) into one member.
type query struct {
	argv  []string
	about string // what it is run for, shown in its header: "(//srv/share)"
	// hung is what a timeout suggests: "server not answering?".
	hung string
	// tolerated returns a note for a failure that does not make the action fail (a
	// query an older tool lacks), or "".
	tolerated func(stderr string) string
}

// runQueries runs qs in order into w, each between a "### argv (about)" header and a
// "### status in duration" line. Each gets an equal share of the action's remaining
// time, less a tenth kept so the action itself ends before its deadline and reports
// which queries hung: a query that hangs (a dead server) is killed when its share is
// used, and the next still runs.
func runQueries(ctx context.Context, env *Env, w io.Writer, qs []query) error {
	var errs []error
	for i, q := range qs {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		err := q.run(ctx, env, w, len(qs)-i)
		if errors.Is(err, ErrLimit) {
			return errors.Join(append(errs, err)...)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (q query) run(ctx context.Context, env *Env, w io.Writer, runsLeft int) error {
	qctx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		qctx, cancel = context.WithTimeout(ctx, time.Until(dl)*9/10/time.Duration(runsLeft))
		defer cancel()
	}
	cmd := strings.Join(q.argv, " ")
	header := "### " + cmd
	if q.about != "" {
		header += " (" + q.about + ")"
	}
	if _, err := fmt.Fprintln(w, header); err != nil {
		return err
	}
	var one Result
	start := time.Now()
	err := runCommand(qctx, env, w, &one, q.argv...)
	status := "ok"
	switch {
	case errors.Is(err, ErrLimit):
		return err
	case qctx.Err() != nil:
		err = fmt.Errorf("%s: timed out", cmd)
		if q.hung != "" {
			err = fmt.Errorf("%w (%s)", err, q.hung)
		}
		status = "timed out"
	case err != nil && q.tolerated != nil && q.tolerated(one.Stderr) != "":
		err, status = nil, q.tolerated(one.Stderr)
	case err != nil:
		err = fmt.Errorf("%s: %w", cmd, err)
		status = err.Error()
	}
	if one.Stderr != "" {
		if _, werr := fmt.Fprintf(w, "stderr: %s\n", one.Stderr); werr != nil {
			return werr
		}
	}
	if _, werr := fmt.Fprintf(w, "### %s in %s\n\n", status, time.Since(start).Round(time.Millisecond)); werr != nil {
		return werr
	}
	return err
}
