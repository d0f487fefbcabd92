package podattr

// OpenTelemetry attribute keys of a Workload: semantic conventions v1.43.0
// (go.opentelemetry.io/otel/semconv/v1.43.0, a test pins them) where they name the
// thing, aod's own otherwise. CgroupID is the kernel's id of the cgroup, in the "0x..."
// form the receiver gives ids.
const (
	KeyCgroupID         = "aod.cgroup.id"
	KeyCgroup           = "process.linux.cgroup"
	KeyContainerID      = "container.id"
	KeyContainerRuntime = "container.runtime.name"
	KeyPodUID           = "k8s.pod.uid"
	KeyPodName          = "k8s.pod.name"
	KeyNamespace        = "k8s.namespace.name"
	KeyContainerName    = "k8s.container.name"
	// KeyUnit names the systemd unit; semantic conventions have no key for it.
	KeyUnit = "systemd.unit"
)

// fields pairs each key with its field, in the order attributes are written.
func (w *Workload) fields() [8]struct {
	key string
	val *string
} {
	return [8]struct {
		key string
		val *string
	}{
		{KeyCgroup, &w.Cgroup}, {KeyContainerID, &w.ContainerID}, {KeyContainerRuntime, &w.Runtime},
		{KeyPodUID, &w.PodUID}, {KeyPodName, &w.PodName}, {KeyNamespace, &w.Namespace},
		{KeyContainerName, &w.ContainerName}, {KeyUnit, &w.Unit},
	}
}

// Attributes calls put for each known field with its attribute key.
func (w Workload) Attributes(put func(key, value string)) {
	for _, f := range w.fields() {
		if *f.val != "" {
			put(f.key, *f.val)
		}
	}
}

// FromAttributes is the inverse of Attributes: get returns an attribute's value, ""
// if absent.
func FromAttributes(get func(key string) string) Workload {
	var w Workload
	for _, f := range w.fields() {
		*f.val = get(f.key)
	}
	return w
}

// IsZero reports whether w names nothing.
func (w Workload) IsZero() bool { return w == Workload{} }

// Name is a short name for "top" lists: namespace/pod/container on Kubernetes, the
// runtime and the container id's first 12 digits for other containers, the systemd
// unit, or the cgroup path.
func (w Workload) Name() string {
	switch {
	case w.PodName != "":
		n := w.Namespace + "/" + w.PodName
		if w.ContainerName != "" {
			n += "/" + w.ContainerName
		}
		return n
	case w.PodUID != "":
		return "pod " + w.PodUID
	case w.ContainerID != "":
		rt := w.Runtime
		if rt == "" {
			rt = "container"
		}
		return rt + " " + w.ContainerID[:12]
	case w.Unit != "":
		return w.Unit
	}
	return w.Cgroup
}
