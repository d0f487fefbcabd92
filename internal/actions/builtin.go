package actions

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/linuxdiag/aod/internal/proto"
)

// Names of the built-in actions. The first seven are AODv2's and keep its spelling;
// the rest are aod's. AODv2 has no NFS actions: its NFS anomalies run dmesg,
// journalctl, syslogs and trace-cmd only.
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
	NameMountstats = "mountstats"
	NameNFSRPC     = "nfs_rpc_stats"
	NameNfsstat    = "nfsstat"
	NameRpcinfo    = "rpcinfo"
	NameShowmount  = "showmount"
	NameNFSTasks   = "nfs_tasks"
)

// Always lists, per protocol, the actions every bundle of that protocol gets whatever
// the configuration says: they need nothing but the kernel, or at most one round trip
// to each server bounded by its share of the action's timeout, and are what a bundle
// is read for first. The configuration cannot name them, as aod reads AODv2's files
// unchanged and AODv2 has no such names. (inflight reads the SMB probes' start map.)
var Always = map[proto.Protocol][]string{
	proto.SMB: {NameEvents, NameInflight, NameSockets, NameCifsParams},
	proto.NFS: {NameEvents, NameSockets, NameMountstats, NameNFSRPC, NameNFSTasks, NameNfsstat, NameRpcinfo, NameShowmount},
	// The failed operations with their processes and paths, and the mount table.
	proto.IO: {NameEvents, NameMounts},
}

// ForMounts lists, per protocol, the actions an io bundle gets when its failures hit
// a mount of that protocol's client: the failing processes saw what that client did.
var ForMounts = map[proto.Protocol][]string{
	proto.SMB: {NameDebugData, NameStats, NameInflight, NameSockets, NameCifsParams},
	proto.NFS: {NameMountstats, NameNFSRPC, NameNFSTasks, NameNfsstat, NameSockets},
}

// Members of the bundle. AODv2's quick actions keep AODv2's file names, so scripts
// written for its bundles read aod's unchanged; the NFS ones, which AODv2 lacks,
// follow their pattern.
const (
	MemberDmesg      = "dmesg.log"
	MemberJournalctl = "journalctl.log"
	MemberSyslogs    = "syslogs.log"
	MemberDebugData  = "debug_data.log"
	MemberStats      = "cifsstats.log"
	MemberMounts     = "mounts.log"
	MemberSmbinfo    = "smbinfo.log"
	MemberMountstats = "mountstats.log"
	MemberNFSRPC     = "nfs_rpc_stats.log"
	MemberNfsstat    = "nfsstat.log"
	MemberRpcinfo    = "rpcinfo.log"
	MemberShowmount  = "showmount.log"
	MemberNFSTasks   = "nfs_tasks.log"
)

// sources are the host files the built-in actions read. Tests point them at fixtures.
type sources struct {
	cifsDir     string         // /proc/fs/cifs
	cifsParams  string         // the cifs module's parameters
	mounts      string         // the mount table of aod's namespace
	mountstats  string         // the NFS client's per-mount statistics, of aod's namespace
	nfsRPC      string         // the NFS client's RPC statistics
	rpcClients  string         // sunrpc's debugfs folder of RPC clients
	syslogs     []string       // the syslog files, first existing wins
	journalDirs []string       // where systemd-journald keeps the journal (volatile, persistent)
	kmsg        string         // the kernel log device: one record per read, non-blocking at its end
	zone        *time.Location // of syslog timestamps that do not say theirs
}

// hostSources are the real ones. The mount table is /proc/self/mounts, the mounts of
// aod's namespace: /proc/mounts is a symlink to it, and collected files are opened
// without following symlinks.
var hostSources = sources{
	cifsDir:     "/proc/fs/cifs",
	cifsParams:  "/sys/module/cifs/parameters",
	mounts:      "/proc/self/mounts",
	mountstats:  "/proc/self/mountstats",
	nfsRPC:      "/proc/net/rpc/nfs",
	rpcClients:  "/sys/kernel/debug/sunrpc/rpc_clnt",
	syslogs:     []string{"/var/log/syslog", "/var/log/messages"},
	journalDirs: []string{"/run/log/journal", "/var/log/journal"},
	kmsg:        "/dev/kmsg",
	zone:        time.Local,
}

// Builtin returns the table of built-in actions.
func Builtin() Table { return hostSources.table() }

func (s sources) table() Table {
	const noCifs = "the cifs module is not loaded"
	noNFS := "the nfs module is not loaded (no " + s.nfsRPC + ")"
	return Table{
		NameDmesg:      s.dmesgAction(),
		NameJournalctl: s.journalctlAction(),
		NameSyslogs:    syslogAction(s.syslogs, "neither "+strings.Join(s.syslogs, " nor ")+" exists", s.zone),
		NameDebugData:  File(NameDebugData, MemberDebugData, path.Join(s.cifsDir, "DebugData"), noCifs),
		NameStats:      File(NameStats, MemberStats, path.Join(s.cifsDir, "Stats"), noCifs),
		NameMounts:     File(NameMounts, MemberMounts, s.mounts, s.mounts+" does not exist"),
		NameSmbinfo:    smbinfoAction(s.mounts),
		NameEvents:     eventsAction(),
		NameInflight:   inflightAction(),
		NameSockets:    socketsAction(),
		NameCifsParams: Params(NameCifsParams, "cifs_params.txt", s.cifsParams, noCifs),
		NameMountstats: File(NameMountstats, MemberMountstats, s.mountstats, s.mountstats+" does not exist"),
		NameNFSRPC:     File(NameNFSRPC, MemberNFSRPC, s.nfsRPC, noNFS),
		NameNfsstat:    nfsstatAction(s.nfsRPC, noNFS),
		NameNFSTasks:   nfsTasksAction(s.rpcClients),
		NameRpcinfo:    nfsServerAction(NameRpcinfo, MemberRpcinfo, s.mounts, "rpcbind", "rpcinfo", "-p"),
		NameShowmount:  nfsServerAction(NameShowmount, MemberShowmount, s.mounts, "nfs-common or nfs-utils", "showmount", "-e"),
	}
}

// Names returns the table's action names in order.
func (t Table) Names() []string { return slices.Sorted(maps.Keys(t)) }

// haveJournal reports whether systemd-journald keeps a journal here. journalctl
// exists on hosts without one (containers, minimal images) and then prints nothing
// useful.
func (s sources) haveJournal() bool {
	for _, d := range s.journalDirs {
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
func (s sources) dmesgAction() Action {
	return Action{Name: NameDmesg, Run: func(ctx context.Context, env *Env, out *Output, r *Result) error {
		w, err := out.Create(MemberDmesg)
		if err != nil {
			return err
		}
		if s.haveJournal() {
			err := runCommand(ctx, env, w, r, "journalctl", "-k", "--no-pager", "-q", "-o", "short-iso-precise",
				"--since", journalSince(env.Since), "--until", journalSince(env.Until.Add(time.Second)))
			var skip *skipError
			if !errors.As(err, &skip) {
				return err
			}
		}
		r.Source = s.kmsg
		return readKmsg(ctx, s.kmsg, w, env.Since, env.Until)
	}}
}

// journalctlAction collects the whole journal of the lookback window.
func (s sources) journalctlAction() Action {
	return Action{Name: NameJournalctl, Run: func(ctx context.Context, env *Env, out *Output, r *Result) error {
		if !s.haveJournal() {
			return Skip("no systemd journal on this host (%v are empty or absent)", s.journalDirs)
		}
		w, err := out.Create(MemberJournalctl)
		if err != nil {
			return err
		}
		return runCommand(ctx, env, w, r, "journalctl", "--no-pager", "-q", "-o", "short-iso-precise",
			"--since", journalSince(env.Since), "--until", journalSince(env.Until.Add(time.Second)))
	}}
}
