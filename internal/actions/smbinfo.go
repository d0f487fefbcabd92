package actions

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// smbinfoQueries are run for every cifs mount point. gettconinfo is answered locally
// by the client (tree and session ids, which match the events' tree_id and
// session_id); filefsfullsizeinfo is one round trip to the server, which shows
// whether the share still answers and how full it is. Both are cheap; neither reads
// file data. (AODv2 ran "smbinfo -h", which prints the help text.)
var smbinfoQueries = []string{"gettconinfo", "filefsfullsizeinfo"}

// cifsMount is one cifs or smb3 entry of a mounts file.
type cifsMount struct {
	Source, Target string
}

// cifsMounts lists the SMB mounts in a mounts file (fields: source target fstype ...,
// with spaces and other specials octal-escaped).
func cifsMounts(r io.Reader) ([]cifsMount, error) {
	var mounts []cifsMount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || (f[2] != "cifs" && f[2] != "smb3") {
			continue
		}
		mounts = append(mounts, cifsMount{Source: unescapeMount(f[0]), Target: unescapeMount(f[1])})
	}
	return mounts, sc.Err()
}

// unescapeMount undoes the kernel's \ooo escaping of mount fields.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// smbinfoAction queries every cifs mount point listed in the mounts file with
// smbinfo. A query that hangs (a dead server) is killed when its share of the
// action's time is used, and the next mount point is still queried.
func smbinfoAction(mountsFile string) Action {
	return Action{Name: NameSmbinfo, Run: func(ctx context.Context, env *Env, out *Output, r *Result) error {
		r.Source = mountsFile
		f, err := os.Open(mountsFile)
		if err != nil {
			return err
		}
		mounts, err := cifsMounts(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", mountsFile, err)
		}
		if len(mounts) == 0 {
			return Skip("no cifs mounts")
		}
		if _, err := env.lookPath("smbinfo"); err != nil {
			return Skip("smbinfo is not installed (package cifs-utils)")
		}
		r.Command = []string{"smbinfo", strings.Join(smbinfoQueries, "|"), "<each cifs mount point>"}
		w, err := out.Create(MemberSmbinfo)
		if err != nil {
			return err
		}
		var errs []error
		runs := len(mounts) * len(smbinfoQueries)
		for _, m := range mounts {
			for _, q := range smbinfoQueries {
				if err := ctx.Err(); err != nil {
					return errors.Join(append(errs, err)...)
				}
				err := smbinfoOnce(ctx, env, w, runs, q, m)
				runs--
				if errors.Is(err, ErrLimit) {
					return errors.Join(append(errs, err)...)
				}
				if err != nil {
					errs = append(errs, err)
				}
			}
		}
		return errors.Join(errs...)
	}}
}

// smbinfoOnce runs one query with an equal share of the action's remaining time,
// less a tenth kept so the action itself ends before its deadline and reports which
// queries hung.
func smbinfoOnce(ctx context.Context, env *Env, w io.Writer, runsLeft int, query string, m cifsMount) error {
	qctx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		qctx, cancel = context.WithTimeout(ctx, time.Until(dl)*9/10/time.Duration(runsLeft))
		defer cancel()
	}
	if _, err := fmt.Fprintf(w, "### smbinfo %s %s (%s)\n", query, m.Target, m.Source); err != nil {
		return err
	}
	var one Result
	start := time.Now()
	err := runCommand(qctx, env, w, &one, "smbinfo", query, m.Target)
	status := "ok"
	switch {
	case errors.Is(err, ErrLimit):
		return err
	case qctx.Err() != nil:
		err = fmt.Errorf("smbinfo %s %s: timed out (server not answering?)", query, m.Target)
		status = "timed out"
	case err != nil && unsupportedQuery(one.Stderr):
		// An older cifs-utils lacks this query (7.0 has no gettconinfo): the rest of
		// the output still stands, so this is noted, not a failure.
		err = nil
		status = "not supported by this smbinfo (an older cifs-utils)"
	case err != nil:
		err = fmt.Errorf("smbinfo %s %s: %w", query, m.Target, err)
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

// unsupportedQuery recognises smbinfo's refusal of a subcommand it does not know:
// cifs-utils' smbinfo is a Python argparse program, which says "invalid choice".
func unsupportedQuery(stderr string) bool {
	return strings.Contains(stderr, "invalid choice")
}
