package actions

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/linuxdiag/aod/internal/nfsproc"
)

// nfsFSTypes are the mounts file types of the kernel's NFS client.
var nfsFSTypes = []string{"nfs", "nfs4"}

// nfsServer is a server of one or more NFS mounts.
type nfsServer struct {
	Host   string   // as the client reaches it: the addr= option, else the device's host
	Mounts []string // "device on mount point" of each of its mounts
}

// nfsServers lists the servers of the NFS mounts, each once, in the order of their
// first mount. The addr= option is the address the kernel connects to: it still
// works when the name in the device no longer resolves. A host beginning with '-'
// is no server's name and would be read as an option, so it is left out.
func nfsServers(mounts []mount) []nfsServer {
	var servers []nfsServer
	index := map[string]int{}
	for _, m := range mounts {
		host, _ := nfsproc.SplitDevice(m.Source)
		if addr, ok := (&nfsproc.Mount{Opts: m.Options}).Option("addr"); ok && addr != "" {
			host = addr
		}
		if host == "" || strings.HasPrefix(host, "-") {
			continue
		}
		i, ok := index[host]
		if !ok {
			i = len(servers)
			index[host] = i
			servers = append(servers, nfsServer{Host: host})
		}
		servers[i].Mounts = append(servers[i].Mounts, m.Source+" on "+m.Target)
	}
	return servers
}

// nfsServerAction runs argv followed by each NFS server's address (rpcinfo -p,
// showmount -e: one round trip to the server's rpcbind or mountd). A server that
// does not answer is killed when its share of the action's time is used, and the
// next is still asked.
func nfsServerAction(name, member, mountsFile, pkg string, argv ...string) Action {
	return Action{Name: name, Run: func(ctx context.Context, env *Env, out *Output, r *Result) error {
		r.Source = mountsFile
		mounts, err := readMounts(mountsFile, nfsFSTypes...)
		if err != nil {
			return err
		}
		servers := nfsServers(mounts)
		if len(servers) == 0 {
			return Skip("no nfs mounts")
		}
		if _, err := env.lookPath(argv[0]); err != nil {
			return Skip("%s is not installed (package %s)", argv[0], pkg)
		}
		r.Command = append(argv[:len(argv):len(argv)], "<each nfs server>")
		w, err := out.Create(member)
		if err != nil {
			return err
		}
		qs := make([]query, len(servers))
		for i, s := range servers {
			qs[i] = query{argv: append(argv[:len(argv):len(argv)], s.Host), about: strings.Join(s.Mounts, ", "),
				hung: "server not answering?"}
		}
		return runQueries(ctx, env, w, qs)
	}}
}

// nfsstatAction runs nfsstat -c (the client's RPC and per-procedure counts, from
// /proc/net/rpc/nfs) and nfsstat -m (each NFS mount's options as the kernel settled
// them, from the mounts file). Neither touches a mount point or a server.
func nfsstatAction(rpcStats, noNFS string) Action {
	return Action{Name: NameNfsstat, Run: func(ctx context.Context, env *Env, out *Output, r *Result) error {
		r.Source = rpcStats
		if _, err := os.Lstat(rpcStats); errors.Is(err, fs.ErrNotExist) {
			return Skip("%s", noNFS)
		}
		if _, err := env.lookPath("nfsstat"); err != nil {
			return Skip("nfsstat is not installed (package nfs-common or nfs-utils)")
		}
		r.Command = []string{"nfsstat", "-c|-m"}
		w, err := out.Create(MemberNfsstat)
		if err != nil {
			return err
		}
		return runQueries(ctx, env, w, []query{{argv: []string{"nfsstat", "-c"}}, {argv: []string{"nfsstat", "-m"}}})
	}}
}

// nfsTasksAction copies, for each RPC client of the kernel's sunrpc (one per NFS
// mount's superblock, plus lease, NFSACL, rpcbind and lockd clients), its tasks: the
// RPCs in flight, each with its procedure, status, timeout and wait queue, the kernel's
// own list of what is pending right now; and its transport's info (address, port,
// state). It needs debugfs mounted (as trace-cmd and most distributions do); aod does
// not mount it. A client without a transport (xprt, a link in debugfs) has no info.
func nfsTasksAction(dir string) Action {
	return Action{Name: NameNFSTasks, Run: func(ctx context.Context, _ *Env, out *Output, r *Result) error {
		r.Source = dir
		entries, err := readDirOrSkip(dir, "no "+dir+": debugfs is not mounted at /sys/kernel/debug, or the sunrpc module is not loaded")
		if err != nil {
			return err
		}
		// Client ids are decimal: in numeric order, the order they were created.
		slices.SortFunc(entries, func(a, b fs.DirEntry) int {
			return cmp.Or(cmp.Compare(len(a.Name()), len(b.Name())), strings.Compare(a.Name(), b.Name()))
		})
		w, err := out.Create(MemberNFSTasks)
		if err != nil {
			return err
		}
		var failed []error
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			if _, err := fmt.Fprintf(w, "== rpc_clnt %s\n", e.Name()); err != nil {
				return err
			}
			for _, file := range []string{"tasks", "xprt/info"} {
				err := copyFile(ctx, w, filepath.Join(dir, e.Name(), file))
				if file == "xprt/info" && errors.Is(err, fs.ErrNotExist) {
					continue
				}
				if err != nil {
					failed = append(failed, err)
					fmt.Fprintf(w, "<%v>\n", err)
				}
			}
		}
		return errors.Join(failed...)
	}}
}

// copyFile appends path (a /proc, /sys or debugfs file, read to its end) to w.
func copyFile(ctx context.Context, w io.Writer, path string) error {
	f, err := openSource(path, "")
	if err != nil {
		return err
	}
	defer f.Close()
	return copyFrom(ctx, w, f, path)
}
