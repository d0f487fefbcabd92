package podattr

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/linuxdiag/aod/internal/mountinfo"
)

// Default places of what a Resolver reads.
const (
	DefaultPodLogDir       = "/var/log/pods"
	DefaultContainerLogDir = "/var/log/containers"
	DefaultProcDir         = "/proc"
)

// Options configures a Resolver. Zero values take the defaults.
type Options struct {
	// CgroupRoot is where the cgroup v2 hierarchy is mounted; "" finds it in
	// ProcDir/self/mountinfo (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host).
	CgroupRoot      string
	PodLogDir       string // kubelet's pod log folders; DefaultPodLogDir
	ContainerLogDir string // kubelet's container log links; DefaultContainerLogDir
	ProcDir         string // DefaultProcDir
	// MaxEntries bounds the cached cgroups (each cache); 4096 if 0.
	MaxEntries int
	// Rescan is the least time between two reads of the cgroup tree or of a log
	// folder, which a lookup that misses triggers; a second if 0, none if negative.
	Rescan time.Duration
}

// Resolver names the workloads of cgroup ids. A lookup is a map read; one that misses
// reads the cgroup tree (the only way from a cgroup id to its path without privileges)
// and kubelet's log folders again, at most once per Options.Rescan each, so a burst of
// events from an unknown cgroup costs one read, not one per event. It is safe for
// concurrent use.
type Resolver struct {
	opts Options

	mu         sync.Mutex
	rootErr    error             // why there is no cgroup v2 root
	paths      map[uint64]string // cgroup id → path, from the last walk
	walked     time.Time
	workloads  map[uint64]Workload // resolved, complete
	pods       map[string]podRef
	podsRead   time.Time
	containers map[string]containerRef
	ctrsRead   time.Time
}

// New returns a Resolver; it reads nothing until the first lookup.
func New(o Options) *Resolver {
	if o.PodLogDir == "" {
		o.PodLogDir = DefaultPodLogDir
	}
	if o.ContainerLogDir == "" {
		o.ContainerLogDir = DefaultContainerLogDir
	}
	if o.ProcDir == "" {
		o.ProcDir = DefaultProcDir
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 4096
	}
	switch {
	case o.Rescan == 0:
		o.Rescan = time.Second
	case o.Rescan < 0:
		o.Rescan = 0
	}
	r := &Resolver{opts: o, workloads: map[uint64]Workload{}}
	if o.CgroupRoot == "" {
		r.opts.CgroupRoot, r.rootErr = findCgroup2(filepath.Join(o.ProcDir, "self", "mountinfo"))
	}
	return r
}

// findCgroup2 returns the mount point of the cgroup v2 hierarchy.
func findCgroup2(mountinfoPath string) (string, error) {
	f, err := os.Open(mountinfoPath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	mounts, err := mountinfo.Parse(mountinfoPath, f)
	// The last one: in a container the host's hierarchy is bind-mounted over the
	// runtime's, which a private cgroup namespace roots at the container's own cgroup.
	for _, m := range slices.Backward(mounts) {
		if m.FSType == "cgroup2" {
			return m.Point, nil
		}
	}
	if err == nil {
		err = errors.New("podattr: no cgroup2 file system mounted: cgroups cannot be named")
	}
	return "", err
}

// Lookup names the workload of cgroup id (event.Event's CgroupID); false when the id is
// 0 or no cgroup has it (any more).
func (r *Resolver) Lookup(id uint64) (Workload, bool) {
	if id == 0 {
		return Workload{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if w, ok := r.workloads[id]; ok {
		return w, true
	}
	path, ok := r.paths[id]
	if !ok && r.due(&r.walked) {
		r.walk()
		path, ok = r.paths[id]
	}
	if !ok {
		return Workload{}, false
	}
	w := ParsePath(path)
	if r.name(&w) {
		// Complete: what kubelet's files say of a pod and a container does not change.
		if len(r.workloads) >= r.opts.MaxEntries {
			clear(r.workloads)
		}
		r.workloads[id] = w
	}
	return w, true
}

// CgroupOf returns the cgroup v2 id of process pid, from ProcDir/<pid>/cgroup: for
// records whose probe could not see the issuer's cgroup (an NFS RPC completed by
// rpciod). 0 if the process is gone or in no cgroup v2.
func (r *Resolver) CgroupOf(pid uint32) uint64 {
	if pid == 0 || r.rootErr != nil {
		return 0
	}
	f, err := os.Open(filepath.Join(r.opts.ProcDir, strconv.FormatUint(uint64(pid), 10), "cgroup"))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if path, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			if strings.Contains(path, "/..") {
				// Outside the reader's cgroup namespace: the path is relative to a
				// root the hierarchy mounted here does not start at.
				return 0
			}
			return inode(filepath.Join(r.opts.CgroupRoot, path))
		}
	}
	return 0
}

// due says whether the thing last read at *last may be read again, and if so marks
// it read now.
func (r *Resolver) due(last *time.Time) bool {
	now := time.Now()
	if !last.IsZero() && now.Sub(*last) < r.opts.Rescan {
		return false
	}
	*last = now
	return true
}

// walk reads the cgroup tree's ids, up to MaxEntries times 16 cgroups (a node's
// cgroups outnumber the ones that issue requests).
func (r *Resolver) walk() {
	if r.rootErr != nil {
		return
	}
	limit := r.opts.MaxEntries * 16
	paths := make(map[uint64]string, len(r.paths))
	root := r.opts.CgroupRoot
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil // a cgroup removed meanwhile
		}
		if len(paths) >= limit {
			return filepath.SkipAll
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			rel := strings.TrimPrefix(p, root)
			if rel == "" {
				rel = "/"
			}
			paths[st.Ino] = rel
		}
		return nil
	})
	r.paths = paths
}

// name fills in the pod's and the container's names from kubelet's log folders and
// reports whether w is complete (nothing left to learn later).
func (r *Resolver) name(w *Workload) bool {
	if w.PodUID == "" {
		return true
	}
	p, ok := r.pods[w.PodUID]
	if !ok && r.due(&r.podsRead) {
		r.pods = readNames(r.opts.PodLogDir, parsePodDir)
		p, ok = r.pods[w.PodUID]
	}
	w.Namespace, w.PodName = p.namespace, p.name
	if w.ContainerID == "" {
		return ok
	}
	c, found := r.containers[w.ContainerID]
	if !found && r.due(&r.ctrsRead) {
		r.containers = readNames(r.opts.ContainerLogDir, parseContainerLog)
		c, found = r.containers[w.ContainerID]
	}
	w.ContainerName = c.container
	if !ok && found { // the pod's folder is gone or unreadable; its container's link names it
		w.Namespace, w.PodName = c.pod.namespace, c.pod.name
	}
	return ok && found
}

// readNames reads the names of a folder's entries through parse; a missing folder
// (not a Kubernetes node) gives none.
func readNames[V any](dir string, parse func(string) (string, V, bool)) map[string]V {
	entries, err := os.ReadDir(dir)
	out := make(map[string]V, len(entries))
	if err != nil {
		return out
	}
	for _, e := range entries {
		if k, v, ok := parse(e.Name()); ok {
			out[k] = v
		}
	}
	return out
}

// inode returns a path's inode number, 0 if it cannot be read.
func inode(path string) uint64 {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return 0
	}
	return st.Ino
}
