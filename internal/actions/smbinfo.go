package actions

import (
	"context"
	"strings"
)

// smbinfoQueries are run for every cifs mount point. gettconinfo is answered locally
// by the client (tree and session ids, which match the events' tree_id and
// session_id); filefsfullsizeinfo is one round trip to the server, which shows
// whether the share still answers and how full it is. Both are cheap; neither reads
// file data. (AODv2 ran "smbinfo -h", which prints the help text.)
var smbinfoQueries = []string{"gettconinfo", "filefsfullsizeinfo"}

// smbinfoAction queries every cifs mount point listed in the mounts file with
// smbinfo. A query that hangs (a dead server) is killed when its share of the
// action's time is used, and the next mount point is still queried.
func smbinfoAction(mountsFile string) Action {
	return Action{Name: NameSmbinfo, Run: func(ctx context.Context, env *Env, out *Output, r *Result) error {
		r.Source = mountsFile
		mounts, err := readMounts(mountsFile, "cifs", "smb3")
		if err != nil {
			return err
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
		var qs []query
		for _, m := range mounts {
			for _, q := range smbinfoQueries {
				qs = append(qs, query{argv: []string{"smbinfo", q, m.Target}, about: m.Source,
					hung: "server not answering?", tolerated: unsupportedQuery})
			}
		}
		return runQueries(ctx, env, w, qs)
	}}
}

// unsupportedQuery recognises smbinfo's refusal of a subcommand it does not know:
// cifs-utils' smbinfo is a Python argparse program, which says "invalid choice". An
// older cifs-utils lacks a query (7.0 has no gettconinfo): the rest of the output
// still stands, so this is noted, not a failure.
func unsupportedQuery(stderr string) string {
	if strings.Contains(stderr, "invalid choice") {
		return "not supported by this smbinfo (an older cifs-utils)"
	}
	return ""
}
