package packaging_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/applyconfigurations"
	clientscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/linuxdiag/aod/internal/config"
)

// The DaemonSet's documents, decoded strictly into the Kubernetes API's own types (an
// unknown or misspelt field, a wrong type is an error, as the API server's strict
// field validation makes it), then checked for what aod needs of the node.
func TestDaemonSetManifest(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("kubernetes", "daemonset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		ns corev1.Namespace
		cm corev1.ConfigMap
		ds appsv1.DaemonSet
	)
	docs := bytes.Split(b, []byte("\n---\n"))
	if len(docs) != 3 {
		t.Fatalf("%d documents, want Namespace, ConfigMap, DaemonSet", len(docs))
	}
	for i, dst := range []any{&ns, &cm, &ds} {
		if err := yaml.UnmarshalStrict(docs[i], dst); err != nil {
			t.Fatalf("document %d: %v", i+1, err)
		}
	}
	for _, o := range []struct{ kind, apiVersion, gotKind, gotVersion string }{
		{"Namespace", "v1", ns.Kind, ns.APIVersion},
		{"ConfigMap", "v1", cm.Kind, cm.APIVersion},
		{"DaemonSet", "apps/v1", ds.Kind, ds.APIVersion},
	} {
		if o.gotKind != o.kind || o.gotVersion != o.apiVersion {
			t.Errorf("%s/%s, want %s/%s", o.gotVersion, o.gotKind, o.apiVersion, o.kind)
		}
	}
	for _, name := range []string{ns.Name, cm.Name, ds.Name} {
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			t.Errorf("name %q: %v", name, errs)
		}
	}
	if cm.Namespace != ns.Name || ds.Namespace != ns.Name {
		t.Errorf("namespaces %q, %q, want %q", cm.Namespace, ds.Namespace, ns.Name)
	}
	// The ConfigMap's configuration is one aod accepts.
	if _, _, err := config.Parse("aod.yaml", []byte(cm.Data["aod.yaml"])); err != nil {
		t.Errorf("the ConfigMap's aod.yaml: %v", err)
	}

	spec := ds.Spec.Template.Spec
	if sel := ds.Spec.Selector; sel == nil || !subset(sel.MatchLabels, ds.Spec.Template.Labels) {
		t.Errorf("selector %v does not select the template's labels %v", sel, ds.Spec.Template.Labels)
	}
	if !spec.HostPID || !spec.HostNetwork {
		t.Error("aod needs the node's processes and connections: hostPID and hostNetwork")
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want aod's", len(spec.Containers))
	}
	c := spec.Containers[0]

	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			t.Errorf("mount %s: no volume %q", m.MountPath, m.Name)
		}
		if v.HostPath != nil {
			mounts[v.HostPath.Path] = m
		}
	}
	for _, want := range []struct {
		host     string
		readOnly bool
	}{
		{"/sys/fs/cgroup", true},
		{"/var/log/pods", true},
		{"/var/log/containers", true},
		{"/sys/kernel/tracing", false}, // trace-cmd enables events
		{"/sys/fs/bpf", false},
		{"/var/log/aod", false},
	} {
		m, ok := mounts[want.host]
		switch {
		case !ok:
			t.Errorf("host path %s is not mounted", want.host)
		case m.MountPath != want.host:
			// podattr's defaults and the kernel's tools read them at the host's paths.
			t.Errorf("host path %s mounted at %s", want.host, m.MountPath)
		case m.ReadOnly != want.readOnly:
			t.Errorf("host path %s: readOnly %v, want %v", want.host, m.ReadOnly, want.readOnly)
		}
	}
	if _, ok := mounts["/proc"]; ok {
		t.Error("the host's /proc is mounted: hostPID gives the node's processes without it")
	}

	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil || sc.Privileged != nil && *sc.Privileged {
		t.Fatal("aod runs unprivileged with explicit capabilities")
	}
	if !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("capabilities dropped %v, want ALL", sc.Capabilities.Drop)
	}
	for _, want := range []corev1.Capability{"BPF", "PERFMON"} {
		if !slices.Contains(sc.Capabilities.Add, want) {
			t.Errorf("capability %s not added", want)
		}
	}
	if slices.Contains(sc.Capabilities.Add, "SYS_ADMIN") {
		t.Error("SYS_ADMIN added: BPF and PERFMON are enough for aod's programs")
	}

	req, lim := c.Resources.Requests, c.Resources.Limits
	// make bench (bench/README.md): about 50 MiB resident when idle.
	if m := req.Memory(); m.Value() < 51<<20 || lim.Memory().Cmp(*m) <= 0 {
		t.Errorf("memory request %v, limit %v: want at least the measured 51Mi, and a limit above it", m, lim.Memory())
	}
	if req.Cpu().IsZero() {
		t.Error("no CPU request")
	}

	p := c.ReadinessProbe
	if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/metrics" {
		t.Fatalf("readiness probe %+v, want GET /metrics", p)
	}
	port := -1
	for _, cp := range c.Ports {
		if cp.Name == p.HTTPGet.Port.String() || cp.ContainerPort == p.HTTPGet.Port.IntVal {
			port = int(cp.ContainerPort)
		}
	}
	cfg, _, _ := config.Parse("aod.yaml", []byte(cm.Data["aod.yaml"]))
	if cfg == nil || port < 0 || !strings.HasSuffix(cfg.Telemetry.Prometheus.Listen, ":"+strconv.Itoa(port)) {
		t.Errorf("the probe's port %d is not where the ConfigMap's prometheus.listen serves", port)
	}
	if !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool {
		return v.ConfigMap != nil && v.ConfigMap.Name == cm.Name
	}) {
		t.Error("the ConfigMap is not mounted")
	}
}

func subset(a, b map[string]string) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) > 0
}

// The same documents against the API's OpenAPI schemas, as the API server validates an
// object's structure for server-side apply (client-go's copy of the schemas of every
// built-in type, read with structured-merge-diff): every field declared, every value of its
// declared type. A document with a field the schema lacks is refused, so the check bites.
func TestDaemonSetManifestMatchesTheOpenAPISchemas(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("kubernetes", "daemonset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tc := applyconfigurations.NewTypeConverter(clientscheme.Scheme)
	validate := func(doc []byte) error {
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return err
		}
		_, err := tc.ObjectToTyped(&unstructured.Unstructured{Object: obj})
		return err
	}
	docs := bytes.Split(b, []byte("\n---\n"))
	for i, doc := range docs {
		if err := validate(doc); err != nil {
			t.Errorf("document %d does not match its OpenAPI schema: %v", i+1, err)
		}
	}
	bad := bytes.Replace(docs[len(docs)-1], []byte("readOnlyRootFilesystem: true"), []byte("readOnlyRootFilesystem: true\n            readOnlyRootFileSystem: true"), 1)
	if bytes.Equal(bad, docs[len(docs)-1]) {
		t.Fatal("the DaemonSet sets no readOnlyRootFilesystem to misspell")
	}
	if err := validate(bad); err == nil || !strings.Contains(err.Error(), "readOnlyRootFileSystem") {
		t.Errorf("a misspelt field passed the schema check: %v", err)
	}
}
