package podattr

import (
	"strings"
)

// podRef is a pod as kubelet's log folder names it.
type podRef struct{ namespace, name string }

// containerRef is a container as kubelet's log symlink names it.
type containerRef struct {
	pod       podRef
	container string
}

// parsePodDir reads a folder of /var/log/pods, "<namespace>_<name>_<uid>". Namespaces
// and pod names are DNS names, which have no underscores.
func parsePodDir(name string) (uid string, p podRef, ok bool) {
	parts := strings.Split(name, "_")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || !isUID(parts[2]) {
		return "", podRef{}, false
	}
	return parts[2], podRef{namespace: parts[0], name: parts[1]}, true
}

// parseContainerLog reads a link of /var/log/containers,
// "<pod>_<namespace>_<container>-<id>.log".
func parseContainerLog(name string) (id string, c containerRef, ok bool) {
	base, found := strings.CutSuffix(name, ".log")
	if !found {
		return "", containerRef{}, false
	}
	parts := strings.Split(base, "_")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return "", containerRef{}, false
	}
	i := strings.LastIndexByte(parts[2], '-')
	if i <= 0 || !isContainerID(parts[2][i+1:]) {
		return "", containerRef{}, false
	}
	return parts[2][i+1:], containerRef{pod: podRef{namespace: parts[1], name: parts[0]}, container: parts[2][:i]}, true
}
