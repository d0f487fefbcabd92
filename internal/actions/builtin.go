package actions

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/linuxdiag/aod/internal/proto"
)

// Names of the built-in actions. The first seven are AODv2's and keep its spelling;
// the rest are aod's.
const (
	NameDmesg      = "dmesg"
	NameJournalctl = "journalctl"
	NameSyslogs    = "syslogs"
	NameDebugData  = "debugdata"
	NameStats      = "stats"
	NameMounts     = "mounts"
	NameSmbinfo    = "smbinfo"
	NameEvents     = "events"
	NameInflight   = "inflight"
	NameSockets    = "sockets"
	NameCifsParams = "cifs_params"
)

// Always lists, per protocol, the actions every bundle of that protocol gets whatever
// the configuration says: they need nothing but the kernel, cannot hang on a server,
// and are what a bundle is read for first.
var Always = map[proto.Protocol][]string{
	proto.SMB: {NameEvents, NameInflight, NameSockets, NameCifsParams},
}

// journalDirs are where systemd-journald keeps the journal (volatile, persistent).
var journalDirs = []string{"/run/log/journal", "/var/log/journal"}

// Builtin returns the table of built-in actions.
func Builtin() Table {
	const noCifs = "the cifs module is not loaded"
	return Table{
		NameDmesg:      dmesgAction(),
		NameJournalctl: journalctlAction(),
		NameSyslogs: Tail(NameSyslogs, "syslogs.log", []string{"/var/log/syslog", "/var/log/messages"},
			"neither /var/log/syslog nor /var/log/messages exists"),
		NameDebugData:  File(NameDebugData, "debugdata.txt", "/proc/fs/cifs/DebugData", noCifs),
		NameStats:      File(NameStats, "stats.txt", "/proc/fs/cifs/Stats", noCifs),
		NameMounts:     File(NameMounts, "mounts.txt", mountsPath, mountsPath+" does not exist"),
		NameSmbinfo:    smbinfoAction(mountsPath),
		NameEvents:     eventsAction(),
		NameInflight:   inflightAction(),
		NameSockets:    socketsAction(),
		NameCifsParams: Params(NameCifsParams, "cifs_params.txt", "/sys/module/cifs/parameters", noCifs),
	}
}

// Names returns the table's action names in order.
func (t Table) Names() []string { return slices.Sorted(maps.Keys(t)) }

// haveJournal reports whether systemd-journald keeps a journal here. journalctl
// exists on hosts without one (containers, minimal images) and then prints nothing
// useful.
func haveJournal() bool {
	for _, d := range journalDirs {
		if entries, err := os.ReadDir(d); err == nil && len(entries) > 0 {
			return true
		}
	}
	return false
}

// journalSince formats a time for journalctl's --since/--until ("@" + Unix seconds).
func journalSince(t time.Time) string { return fmt.Sprintf("@%d", t.Unix()) }

// dmesgAction collects the kernel log of the lookback window: from the journal where
// there is one (it survives the kernel's ring buffer wrapping), else from /dev/kmsg.
func dmesgAction() Action {
	return Action{Name: NameDmesg, Run: func(ctx context.Context, env *Env, out *Output, r *Result) error {
		w, err := out.Create("dmesg.log")
		if err != nil {
			return err
		}
		if haveJournal() {
			err := runCommand(ctx, env, w, r, "journalctl", "-k", "--no-pager", "-q", "-o", "short-iso-precise",
				"--since", journalSince(env.Since), "--until", journalSince(env.Until.Add(time.Second)))
			var skip *skipError
			if !errors.As(err, &skip) {
				return err
			}
		}
		r.Source = kmsgPath
		return readKmsg(ctx, kmsgPath, w, env.Since, env.Until)
	}}
}

// journalctlAction collects the whole journal of the lookback window.
func journalctlAction() Action {
	return Action{Name: NameJournalctl, Run: func(ctx context.Context, env *Env, out *Output, r *Result) error {
		if !haveJournal() {
			return Skip("no systemd journal on this host (%v are empty or absent)", journalDirs)
		}
		w, err := out.Create("journalctl.log")
		if err != nil {
			return err
		}
		return runCommand(ctx, env, w, r, "journalctl", "--no-pager", "-q", "-o", "short-iso-precise",
			"--since", journalSince(env.Since), "--until", journalSince(env.Until.Add(time.Second)))
	}}
}
