package agent

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/otelconv"
	"github.com/linuxdiag/aod/internal/podattr"
	"github.com/linuxdiag/aod/internal/podattr/podattrtest"
	"github.com/linuxdiag/aod/internal/telemetry/telemetrytest"
)

// TestAgentNamesThePodOfSlowSMBRequests: SMB READs sent from a process in a real
// kubepods cgroup (the test process joins it while the harness runs smb3_cmd_enter)
// make slow-request records that name the pod and its container; with
// workloads.metric_attributes the duration histogram has a series of that pod's own
// beside the share's.
func TestAgentNamesThePodOfSlowSMBRequests(t *testing.T) {
	node := podattrtest.New(t)
	f := startWith(t, time.Second, func(f *fixture) *config.Config {
		src := fmt.Sprintf(agentConfig, f.dir, 50, f.otlp.GRPC, int(f.every.Seconds()), f.prom) +
			fmt.Sprintf("workloads: {cgroup_root: %s, pod_log_dir: %s, container_log_dir: %s, metric_attributes: true}\n",
				node.Root, node.PodLogDir, node.ContainerLogDir)
		cfg, _, err := config.Parse("agent-test.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	})
	// The harness's probes are the caller's: the agent leaves their settings to it.
	if err := f.h.Probes().SetPerCgroup(true); err != nil {
		t.Fatal(err)
	}
	leave := node.Join(t)
	f.read(150)
	f.read(150)
	leave()
	f.read(150) // from outside the pod

	telemetrytest.WaitFor(t, 20*time.Second, "3 slow-request records", func() bool {
		return countRecords(f.otlp, otelconv.EventSlow, nil) >= 3
	})
	pod := map[string]string{
		podattr.KeyPodUID: podattrtest.PodUID, podattr.KeyPodName: podattrtest.PodName,
		podattr.KeyNamespace: podattrtest.Namespace, podattr.KeyContainerName: podattrtest.ContainerName,
		podattr.KeyContainerID: podattrtest.ContainerID, podattr.KeyCgroupID: fmt.Sprintf("0x%x", node.CgroupID),
	}
	if n := countRecords(f.otlp, otelconv.EventSlow, pod); n != 2 {
		t.Errorf("%d slow-request records name the pod, want the 2 it sent", n)
	}

	podSeries := regexp.MustCompile(`smb_client_operation_duration_seconds_count\{[^}]*k8s_pod_name="` +
		podattrtest.PodName + `"[^}]*\} 2`)
	shareSeries := regexp.MustCompile(`smb_client_operation_duration_seconds_count\{(?:[^}k]|k[^8])*\} 1\n`)
	var body string
	telemetrytest.WaitFor(t, 20*time.Second, "the pod's and the share's series", func() bool {
		body = scrape(t, f.prom)
		return podSeries.MatchString(body) && shareSeries.MatchString(body)
	})
	for _, label := range []string{`k8s_namespace_name="` + podattrtest.Namespace + `"`, `k8s_container_name="` + podattrtest.ContainerName + `"`} {
		if !regexp.MustCompile(`smb_client_operation_duration_seconds_count\{[^}]*` + label).MatchString(body) {
			t.Errorf("no duration series with %s:\n%s", label, body)
		}
	}
}

// countRecords counts the log records at the OTLP server with the event name that
// carry every attribute of want.
func countRecords(s *telemetrytest.OTLPServer, name string, want map[string]string) int {
	n := 0
	for _, ld := range s.Logs.AllLogs() {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					if lr.EventName() != name {
						continue
					}
					match := true
					for k, v := range want {
						if got, _ := lr.Attributes().Get(k); got.Str() != v {
							match = false
						}
					}
					if match {
						n++
					}
				}
			}
		}
	}
	return n
}
