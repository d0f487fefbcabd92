package podattr_test

import (
	"os"
	"os/exec"
	"testing"

	"github.com/linuxdiag/aod/internal/podattr"
	"github.com/linuxdiag/aod/internal/podattr/podattrtest"
)

// A process in a real kubepods cgroup: its cgroup id (as the kernel reports it) names
// its pod and container through the cgroup tree and kubelet's log folders.
func TestResolverNamesAProcessInAPod(t *testing.T) {
	n := podattrtest.New(t)
	cmd := exec.Command("cat") // waits on its stdin until the test ends
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close() })
	n.Start(t, cmd)

	r := podattr.New(n.Options())
	id := r.CgroupOf(uint32(cmd.Process.Pid))
	if id != n.CgroupID {
		t.Fatalf("CgroupOf(child) = %d, want the container's cgroup %d", id, n.CgroupID)
	}
	got, ok := r.Lookup(id)
	want := podattr.Workload{
		Cgroup:        n.Container[len(n.Root):],
		Runtime:       podattr.RuntimeContainerd,
		ContainerID:   podattrtest.ContainerID,
		PodUID:        podattrtest.PodUID,
		PodName:       podattrtest.PodName,
		Namespace:     podattrtest.Namespace,
		ContainerName: podattrtest.ContainerName,
	}
	if !ok || got != want {
		t.Errorf("Lookup = %+v %v\nwant %+v", got, ok, want)
	}
	// A cached answer outlives the cgroup tree's next change.
	if again, _ := r.Lookup(id); again != want {
		t.Errorf("second Lookup = %+v", again)
	}
}

func TestResolverWithoutKubelet(t *testing.T) {
	n := podattrtest.New(t)
	o := n.Options()
	o.PodLogDir, o.ContainerLogDir = "/nonexistent", "/nonexistent"
	r := podattr.New(o)
	got, ok := r.Lookup(n.CgroupID)
	if !ok || got.PodUID != podattrtest.PodUID || got.ContainerID != podattrtest.ContainerID || got.PodName != "" {
		t.Errorf("Lookup = %+v %v; want the ids from the path and no names", got, ok)
	}
	if _, ok := r.Lookup(0); ok {
		t.Error("Lookup(0) found a cgroup")
	}
	if _, ok := r.Lookup(1<<63 + 12345); ok {
		t.Error("Lookup of an id no cgroup has found one")
	}
	if id := r.CgroupOf(uint32(os.Getpid())); id == 0 {
		t.Error("CgroupOf(self) = 0")
	}
	if id := r.CgroupOf(0); id != 0 {
		t.Errorf("CgroupOf(0) = %d", id)
	}
}
