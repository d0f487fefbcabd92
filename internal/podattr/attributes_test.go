package podattr

import (
	"testing"

	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

func TestKeysAreSemanticConventions(t *testing.T) {
	for got, want := range map[string]string{
		KeyCgroup:           string(semconv.ProcessLinuxCgroupKey),
		KeyContainerID:      string(semconv.ContainerIDKey),
		KeyContainerRuntime: string(semconv.ContainerRuntimeNameKey),
		KeyPodUID:           string(semconv.K8SPodUIDKey),
		KeyPodName:          string(semconv.K8SPodNameKey),
		KeyNamespace:        string(semconv.K8SNamespaceNameKey),
		KeyContainerName:    string(semconv.K8SContainerNameKey),
	} {
		if got != want {
			t.Errorf("key %q, semantic conventions say %q", got, want)
		}
	}
}

func TestAttributesRoundTrip(t *testing.T) {
	w := Workload{Cgroup: "/k", Runtime: RuntimeCRIO, ContainerID: ctr, PodUID: uid, PodName: "p", Namespace: "n",
		ContainerName: "c", Unit: "u.service"}
	m := map[string]string{}
	w.Attributes(func(k, v string) { m[k] = v })
	if len(m) != 8 {
		t.Errorf("%d attributes: %v", len(m), m)
	}
	if got := FromAttributes(func(k string) string { return m[k] }); got != w {
		t.Errorf("round trip %+v, want %+v", got, w)
	}
	n := 0
	Workload{Cgroup: "/"}.Attributes(func(string, string) { n++ })
	if n != 1 {
		t.Errorf("%d attributes for a bare cgroup", n)
	}
	for w, want := range map[Workload]string{
		{PodName: "web", Namespace: "shop", ContainerName: "app", PodUID: uid}: "shop/web/app",
		{PodUID: uid}: "pod " + uid,
		{ContainerID: ctr, Runtime: RuntimeDocker}:                     "docker 4f1a9c0e2b7d",
		{ContainerID: ctr}:                                             "container 4f1a9c0e2b7d",
		{Unit: "nginx.service", Cgroup: "/system.slice/nginx.service"}: "nginx.service",
		{Cgroup: "/x"}: "/x",
	} {
		if got := w.Name(); got != want {
			t.Errorf("%+v.Name() = %q, want %q", w, got, want)
		}
	}
}
