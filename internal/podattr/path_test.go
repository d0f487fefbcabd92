package podattr

import (
	"strings"
	"testing"
)

const (
	uid     = "0b6e5c2f-9d43-4c8e-a2b1-3f1e6d7c8a90"
	uidSd   = "0b6e5c2f_9d43_4c8e_a2b1_3f1e6d7c8a90"
	static  = "5c2d3f7e9a1b4c6d8e0f1a2b3c4d5e6f" // a static pod: kubelet hashes its manifest
	ctr     = "4f1a9c0e2b7d6f3a8c5e1b9d0a7f2c4e6b8d1a3f5c7e9b0d2f4a6c8e1b3d5f7a"
	ctrConm = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d"
)

// Paths as kubelet (systemd and cgroupfs drivers, every QoS class), containerd, CRI-O,
// docker, podman and systemd make them, seen from the cgroup v2 root.
var pathCases = []struct {
	path string
	want Workload
}{
	// kubelet, systemd driver, containerd
	{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidSd + ".slice/cri-containerd-" + ctr + ".scope",
		Workload{Runtime: RuntimeContainerd, ContainerID: ctr, PodUID: uid}},
	{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidSd + ".slice/cri-containerd-" + ctr + ".scope",
		Workload{Runtime: RuntimeContainerd, ContainerID: ctr, PodUID: uid}},
	{"/kubepods.slice/kubepods-pod" + uidSd + ".slice/cri-containerd-" + ctr + ".scope", // guaranteed
		Workload{Runtime: RuntimeContainerd, ContainerID: ctr, PodUID: uid}},
	// the pod's own cgroup (the pause container's parent): the pod, no container
	{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidSd + ".slice", Workload{PodUID: uid}},
	// CRI-O, systemd driver; its conmon scope is not the container
	{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidSd + ".slice/crio-" + ctr + ".scope",
		Workload{Runtime: RuntimeCRIO, ContainerID: ctr, PodUID: uid}},
	{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidSd + ".slice/crio-conmon-" + ctrConm + ".scope",
		Workload{PodUID: uid}},
	// CRI-O with systemd's cgroup inside the container (crio's "container" sub-cgroup)
	{"/kubepods.slice/kubepods-pod" + uidSd + ".slice/crio-" + ctr + ".scope/container",
		Workload{Runtime: RuntimeCRIO, ContainerID: ctr, PodUID: uid}},
	// cri-dockerd
	{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidSd + ".slice/docker-" + ctr + ".scope",
		Workload{Runtime: RuntimeDocker, ContainerID: ctr, PodUID: uid}},
	// kubelet, cgroupfs driver: the runtime is not in the path (containerd, docker), or is (CRI-O)
	{"/kubepods/burstable/pod" + uid + "/" + ctr, Workload{ContainerID: ctr, PodUID: uid}},
	{"/kubepods/besteffort/pod" + uid + "/" + ctr, Workload{ContainerID: ctr, PodUID: uid}},
	{"/kubepods/pod" + uid + "/" + ctr, Workload{ContainerID: ctr, PodUID: uid}},
	{"/kubepods/burstable/pod" + uid + "/crio-" + ctr, Workload{Runtime: RuntimeCRIO, ContainerID: ctr, PodUID: uid}},
	// a static pod (uid without dashes)
	{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + static + ".slice/cri-containerd-" + ctr + ".scope",
		Workload{Runtime: RuntimeContainerd, ContainerID: ctr, PodUID: static}},
	// kind: kubelet in a container, its slices prefixed kubelet-
	{"/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + uidSd + ".slice/cri-containerd-" + ctr + ".scope",
		Workload{Runtime: RuntimeContainerd, ContainerID: ctr, PodUID: uid}},
	// docker and podman outside Kubernetes
	{"/system.slice/docker-" + ctr + ".scope", Workload{Runtime: RuntimeDocker, ContainerID: ctr}},
	{"/docker/" + ctr, Workload{Runtime: RuntimeDocker, ContainerID: ctr}},
	{"/machine.slice/libpod-" + ctr + ".scope", Workload{Runtime: RuntimePodman, ContainerID: ctr}},
	{"/machine.slice/libpod-" + ctr + ".scope/container", Workload{Runtime: RuntimePodman, ContainerID: ctr}},
	{"/machine.slice/libpod-conmon-" + ctrConm + ".scope", Workload{Unit: "libpod-conmon-" + ctrConm + ".scope"}},
	{"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + ctr + ".scope", // rootless
		Workload{Runtime: RuntimePodman, ContainerID: ctr}},
	{"/libpod_parent/libpod-" + ctr, Workload{Runtime: RuntimePodman, ContainerID: ctr}},
	// systemd units
	{"/system.slice/nginx.service", Workload{Unit: "nginx.service"}},
	{"/user.slice/user-1000.slice/session-3.scope", Workload{Unit: "session-3.scope"}},
	{"/user.slice/user-1000.slice/user@1000.service/app.slice/app-foo@1.service", Workload{Unit: "app-foo@1.service"}},
	{"/init.scope", Workload{Unit: "init.scope"}},
	{"/system.slice/containerd.service", Workload{Unit: "containerd.service"}},
	// nothing to name
	{"/", Workload{}},
	{"", Workload{}},
	{"/system.slice", Workload{}},
	{"/" + ctr, Workload{}}, // a bare id outside a pod or /docker is anyone's
	{"/kubepods/burstable/podnot-a-uid/" + ctr, Workload{}},
	{"/mypods/pod" + uid + "/" + ctr, Workload{}}, // no kubepods
	{"/system.slice/docker-" + ctr[:12] + ".scope", Workload{Unit: "docker-" + ctr[:12] + ".scope"}},
}

func TestParsePath(t *testing.T) {
	for _, c := range pathCases {
		c.want.Cgroup = c.path
		if got := ParsePath(c.path); got != c.want {
			t.Errorf("ParsePath(%q)\n got  %+v\n want %+v", c.path, got, c.want)
		}
	}
}

func FuzzParsePath(f *testing.F) {
	for _, c := range pathCases {
		f.Add(c.path)
	}
	f.Fuzz(func(t *testing.T, path string) {
		w := ParsePath(path)
		if w.Cgroup != path {
			t.Fatalf("Cgroup %q, want the path %q", w.Cgroup, path)
		}
		// Whatever it names is in the path, well formed.
		if w.ContainerID != "" && (!isContainerID(w.ContainerID) || !strings.Contains(path, w.ContainerID)) {
			t.Fatalf("container id %q from %q", w.ContainerID, path)
		}
		if w.PodUID != "" && (!isUID(w.PodUID) || !strings.Contains(strings.ReplaceAll(path, "_", "-"), w.PodUID)) {
			t.Fatalf("pod uid %q from %q", w.PodUID, path)
		}
		if w.Runtime != "" && w.ContainerID == "" {
			t.Fatalf("runtime %q without a container in %q", w.Runtime, path)
		}
		if w.Unit != "" && (w.ContainerID != "" || w.PodUID != "" || strings.Contains(w.Unit, "/") || !strings.Contains(path, w.Unit)) {
			t.Fatalf("unit %q with %+v from %q", w.Unit, w, path)
		}
		if w.PodName != "" || w.Namespace != "" || w.ContainerName != "" {
			t.Fatalf("names from a path alone: %+v", w)
		}
	})
}

func TestKubeletNames(t *testing.T) {
	for _, c := range []struct {
		name string
		uid  string
		pod  podRef
		ok   bool
	}{
		{"kube-system_coredns-5d78c9869d-8xk2p_" + uid, uid, podRef{"kube-system", "coredns-5d78c9869d-8xk2p"}, true},
		{"kube-system_kube-apiserver-node1_" + static, static, podRef{"kube-system", "kube-apiserver-node1"}, true},
		{"default_web_" + uid + "_x", "", podRef{}, false},
		{"default_web_not-a-uid", "", podRef{}, false},
		{"_web_" + uid, "", podRef{}, false},
	} {
		uid, p, ok := parsePodDir(c.name)
		if uid != c.uid || p != c.pod || ok != c.ok {
			t.Errorf("parsePodDir(%q) = %q %+v %v, want %q %+v %v", c.name, uid, p, ok, c.uid, c.pod, c.ok)
		}
	}
	for _, c := range []struct {
		name string
		id   string
		ref  containerRef
		ok   bool
	}{
		{"coredns-5d78c9869d-8xk2p_kube-system_coredns-" + ctr + ".log", ctr,
			containerRef{podRef{"kube-system", "coredns-5d78c9869d-8xk2p"}, "coredns"}, true},
		{"web-0_shop_istio-proxy-" + ctr + ".log", ctr, containerRef{podRef{"shop", "web-0"}, "istio-proxy"}, true},
		{"web-0_shop_app-" + ctr, "", containerRef{}, false},
		{"web-0_shop_app-" + ctr[:63] + ".log", "", containerRef{}, false},
		{"web-0_shop_-" + ctr + ".log", "", containerRef{}, false},
	} {
		id, ref, ok := parseContainerLog(c.name)
		if id != c.id || ref != c.ref || ok != c.ok {
			t.Errorf("parseContainerLog(%q) = %q %+v %v, want %q %+v %v", c.name, id, ref, ok, c.id, c.ref, c.ok)
		}
	}
}
