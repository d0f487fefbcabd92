// Package podattr names the workload behind a cgroup: the Kubernetes pod and
// container, the container of docker, podman or a CRI runtime, or the systemd unit. It
// works from what the node keeps locally, never from an API server: the cgroup v2
// hierarchy (a cgroup's id is its directory's inode number), the layouts kubelet and the
// runtimes give cgroup paths, and the log folders kubelet keeps per pod and container.
package podattr

import (
	"strings"
)

// Container runtimes, as Workload.Runtime names them (OpenTelemetry's
// container.runtime.name values).
const (
	RuntimeContainerd = "containerd"
	RuntimeCRIO       = "cri-o"
	RuntimeDocker     = "docker"
	RuntimePodman     = "podman"
)

// Workload is what runs in one cgroup. Empty fields are unknown or do not apply.
type Workload struct {
	Cgroup        string // the cgroup's path under the cgroup v2 root, "/kubepods.slice/..."
	Runtime       string // RuntimeContainerd, ...; "" when the path does not say
	ContainerID   string // 64 hex digits
	PodUID        string // the pod's metadata.uid, with dashes
	PodName       string // from kubelet's log folders
	Namespace     string
	ContainerName string
	Unit          string // the systemd unit ("nginx.service", "session-3.scope") outside containers
}

// ParsePath reads what a cgroup path tells: the pod (kubepods slices of kubelet's
// systemd driver, kubepods/<qos>/pod<uid> of its cgroupfs driver, in every QoS class),
// the container (cri-containerd-, crio-, docker-, libpod- scopes; /docker/<id>;
// a bare id in a pod's cgroup) and otherwise the systemd unit, the innermost .service
// or .scope. Names that kubelet and the runtimes do not make are left alone: a path
// never gives more than it says.
func ParsePath(path string) Workload {
	w := Workload{Cgroup: path}
	inKube := false
	parent := ""
	for c := range strings.SplitSeq(path, "/") {
		if c == "" {
			continue
		}
		switch {
		case w.ContainerID != "":
			// Cgroups a container makes inside its own (systemd in a container) say
			// nothing more about the container.
		case strings.HasPrefix(c, "kubepods") || strings.Contains(c, "-kubepods"):
			inKube = true
			if uid, ok := systemdPodUID(c); ok {
				w.PodUID = uid
			}
		case inKube && w.PodUID == "" && strings.HasPrefix(c, "pod") && isUID(c[3:]):
			w.PodUID = c[3:]
		default:
			if rt, id, ok := containerOf(c, parent, w.PodUID != ""); ok {
				w.Runtime, w.ContainerID = rt, id
			} else if w.PodUID == "" && (strings.HasSuffix(c, ".service") || strings.HasSuffix(c, ".scope")) {
				w.Unit = c
			}
		}
		parent = c
	}
	if w.ContainerID != "" || w.PodUID != "" {
		w.Unit = ""
	}
	return w
}

// systemdPodUID reads kubelet's systemd-driver pod slice, "kubepods-burstable-pod<uid>.slice"
// (also "kubepods-pod<uid>.slice" for a guaranteed pod, and kubelet-kubepods-... when
// kubelet runs nested), whose uid has underscores for dashes (systemd's slice
// names use dashes for nesting).
func systemdPodUID(c string) (string, bool) {
	name, ok := strings.CutSuffix(c, ".slice")
	if !ok {
		return "", false
	}
	i := strings.LastIndex(name, "-pod")
	if i < 0 {
		return "", false
	}
	uid := strings.ReplaceAll(name[i+len("-pod"):], "_", "-")
	return uid, isUID(uid)
}

// containerOf reads a container's cgroup name: the systemd driver's scopes
// "<prefix>-<id>.scope", the cgroupfs driver's "crio-<id>" and "libpod-<id>", docker's
// "/docker/<id>", or a bare id inside a pod's cgroup (containerd's and docker's cgroupfs
// layout, which does not name the runtime). conmon's scopes (crio-conmon-,
// libpod-conmon-) are the runtime's monitor, not the container.
func containerOf(c, parent string, inPod bool) (runtime, id string, ok bool) {
	name := strings.TrimSuffix(c, ".scope")
	for _, p := range [...]struct{ prefix, runtime string }{
		{"cri-containerd-", RuntimeContainerd},
		{"crio-", RuntimeCRIO},
		{"docker-", RuntimeDocker},
		{"libpod-", RuntimePodman},
	} {
		if id, found := strings.CutPrefix(name, p.prefix); found && isContainerID(id) {
			return p.runtime, id, true
		}
	}
	switch {
	case !isContainerID(c):
		return "", "", false
	case parent == "docker":
		return RuntimeDocker, c, true
	case inPod:
		return "", c, true
	}
	return "", "", false
}

// isContainerID: the 64 lowercase hex digits containerd, CRI-O, docker and podman use.
func isContainerID(s string) bool {
	return len(s) == 64 && isHex(s, false)
}

// isUID: a pod uid, a UUID with dashes, or 32 hex digits (kubelet's static pods take a
// hash of their manifest).
func isUID(s string) bool {
	switch len(s) {
	case 32:
		return isHex(s, false)
	case 36:
		for i, c := range []byte(s) {
			if dash := i == 8 || i == 13 || i == 18 || i == 23; dash != (c == '-') {
				return false
			}
		}
		return isHex(s, true)
	}
	return false
}

func isHex(s string, dashes bool) bool {
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || dashes && c == '-') {
			return false
		}
	}
	return true
}
