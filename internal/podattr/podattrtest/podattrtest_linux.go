// Package podattrtest makes a Kubernetes node's local state for tests: a kubepods
// cgroup tree in the real cgroup v2 hierarchy with a process in a container's cgroup,
// and kubelet's pod and container log folders naming them.
package podattrtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/linuxdiag/aod/internal/podattr"
)

// The pod and container the tree holds.
const (
	PodUID        = "0b6e5c2f-9d43-4c8e-a2b1-3f1e6d7c8a90"
	PodName       = "web-7f9c6d5b8-x2k4p"
	Namespace     = "shop"
	ContainerName = "app"
	ContainerID   = "4f1a9c0e2b7d6f3a8c5e1b9d0a7f2c4e6b8d1a3f5c7e9b0d2f4a6c8e1b3d5f7a"
)

// Node is a kubepods tree made by New.
type Node struct {
	Root            string // the cgroup v2 mount
	Base            string // the test's subtree, under Root
	Container       string // the container's cgroup folder
	CgroupID        uint64 // its id (inode number)
	PodLogDir       string
	ContainerLogDir string
}

// Options returns resolver options that read the node's log folders and look up
// every miss at once.
func (n *Node) Options() podattr.Options {
	return podattr.Options{CgroupRoot: n.Root, PodLogDir: n.PodLogDir, ContainerLogDir: n.ContainerLogDir, Rescan: -1}
}

// New makes the tree under a subtree of the test's own in the cgroup v2 hierarchy,
// kubelet's systemd-driver layout for a burstable pod with a containerd container,
// and the log folders kubelet keeps for them. Everything is removed when the test
// ends (Start's processes are killed first). It skips the test without root or
// cgroup v2.
func New(t testing.TB) *Node {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("podattrtest: needs root to make cgroups")
	}
	root := cgroup2Root(t)
	n := &Node{Root: root, Base: filepath.Join(root, "aod-test-"+strings.ReplaceAll(t.Name(), "/", "-"))}
	n.Container = filepath.Join(n.Base, "kubepods.slice", "kubepods-burstable.slice",
		"kubepods-burstable-pod"+strings.ReplaceAll(PodUID, "-", "_")+".slice",
		"cri-containerd-"+ContainerID+".scope")
	if err := os.MkdirAll(n.Container, 0o755); err != nil {
		t.Skipf("podattrtest: cannot make cgroups: %v", err)
	}
	t.Cleanup(func() {
		// Deepest first: a cgroup with children cannot be removed.
		for d := n.Container; strings.HasPrefix(d, n.Base); d = filepath.Dir(d) {
			if err := os.Remove(d); err != nil {
				t.Errorf("podattrtest: cgroup left behind: %v", err)
			}
		}
	})
	var st syscall.Stat_t
	if err := syscall.Stat(n.Container, &st); err != nil {
		t.Fatal(err)
	}
	n.CgroupID = st.Ino

	logs := t.TempDir()
	n.PodLogDir, n.ContainerLogDir = filepath.Join(logs, "pods"), filepath.Join(logs, "containers")
	podDir := filepath.Join(n.PodLogDir, Namespace+"_"+PodName+"_"+PodUID, ContainerName)
	for _, d := range []string{podDir, n.ContainerLogDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(podDir, "0.log"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(n.ContainerLogDir, PodName+"_"+Namespace+"_"+ContainerName+"-"+ContainerID+".log")
	if err := os.Symlink(filepath.Join(podDir, "0.log"), link); err != nil {
		t.Fatal(err)
	}
	return n
}

// Start starts cmd in the container's cgroup (clone3's CLONE_INTO_CGROUP, so it runs
// nothing outside it); it is killed when the test ends, before the cgroups go.
func (n *Node) Start(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	dir, err := os.Open(n.Container)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(dir.Fd())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}

// Join moves the test process (all its threads) into the container's cgroup, until
// the returned function or the end of the test moves it back where it was.
func (n *Node) Join(t testing.TB) (leave func()) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var home string
	for line := range strings.SplitSeq(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			home = filepath.Join(n.Root, p)
		}
	}
	if home == "" {
		t.Skip("podattrtest: the test process is in no cgroup v2")
	}
	move := func(dir string) error {
		return os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0)
	}
	if err := move(n.Container); err != nil {
		t.Fatalf("podattrtest: join the container's cgroup: %v", err)
	}
	left := false
	leave = func() {
		if !left {
			left = true
			if err := move(home); err != nil {
				t.Errorf("podattrtest: back to %s: %v", home, err)
			}
		}
	}
	t.Cleanup(leave)
	return leave
}

func cgroup2Root(t testing.TB) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Skip(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if _, after, ok := strings.Cut(line, " - cgroup2 "); ok && after != "" {
			return strings.Fields(line)[4]
		}
	}
	t.Skip("podattrtest: no cgroup v2 hierarchy")
	return ""
}
