package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/bpf/bpftest"
	"github.com/linuxdiag/aod/internal/anomalypdata"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/fixtures"
	"github.com/linuxdiag/aod/internal/otelconv"
	"github.com/linuxdiag/aod/internal/podattr"
	"github.com/linuxdiag/aod/internal/podattr/podattrtest"
	"github.com/linuxdiag/aod/internal/telemetry/telemetrytest"
)

// ioAgentConfig watches failed file operations on tmpfs mounts with two of AODv2's io
// rules.
const ioAgentConfig = `watch_interval_sec: 10
aod_output_dir: %s
anomalies:
  io:
    error:
      tool: iosnoop
      rules:
        - name: severe
          acceptable_count: 3
          track_errors: [EIO, ENXIO, ENODEV, ENOSPC, EROFS, EDQUOT, ESTALE]
        - name: path-miss-burst
          acceptable_count: 100
          track_commands: [OPEN, STAT, READLINK]
          track_errors: [ENOENT]
      actions:
        mounts:
telemetry:
  otlp:
    endpoint: %s
    export_interval_sec: 1
    tls: {insecure: true}
  prometheus:
    listen: %s
detection:
  cooldown_sec: 60
  io_filesystems: [tmpfs]
`

// TestAgentWatchesFailedFileOperations fills a small tmpfs until writes fail with
// ENOSPC, three times: the io probe counts them on that mount, the severe rule fires
// and writes its bundle, and the failures are exported by operation, errno, file
// system type and mount point, exactly as many as were made.
func TestAgentWatchesFailedFileOperations(t *testing.T) {
	h := bpftest.New(t)
	probe, err := h.Probes().LoadIO()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { probe.Close() })
	mnt := t.TempDir()
	if err := unix.Mount("aodio", mnt, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })

	f := &fixture{every: time.Second, h: h, otlp: telemetrytest.StartOTLP(t), prom: telemetrytest.FreeAddr(t), dir: t.TempDir()}
	cfg, _, err := config.Parse("io-agent-test.yaml", fmt.Appendf(nil, ioAgentConfig, f.dir, f.otlp.GRPC, f.prom))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, Options{
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Kernel:  h.Probes(),
		IO:      probe,
		ProcDir: fixtures.Path("kernel-6.12"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.agent = a
	t.Cleanup(func() { f.stop(t) })
	if err := probe.Attach(); err != nil {
		t.Fatal(err)
	}

	file, err := os.Create(filepath.Join(mnt, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	// One write fills the file system (it returns a short count, not an error); the
	// next three fail whole. (os.File.Write would retry the rest and fail once more.)
	if n, err := unix.Write(int(file.Fd()), make([]byte, 1<<20)); err != nil || n >= 1<<20 {
		t.Fatalf("filling write: %d, %v", n, err)
	}
	failed := 0
	for range 3 {
		if _, err := unix.Write(int(file.Fd()), make([]byte, 4096)); err == unix.ENOSPC {
			failed++
		}
	}
	probe.Detach()
	if failed != 3 {
		t.Fatalf("%d writes failed with ENOSPC, want 3", failed)
	}

	telemetrytest.WaitFor(t, 20*time.Second, "an io error bundle", func() bool {
		m, _ := filepath.Glob(filepath.Join(f.dir, "batches", "aod_quick_*_io_error.tar.zst"))
		return len(m) == 1
	})
	if !hasSpan(f.otlp, "io.anomaly") {
		t.Error("no io.anomaly span at the OTLP receiver")
	}
	// Prometheus sorts the labels: match the series by its labels, whatever the order.
	labels := []string{`error_type="ENOSPC"`, `io_operation="WRITE"`, fmt.Sprintf("system_filesystem_mountpoint=%q", mnt), `system_filesystem_type="tmpfs"`}
	var series string
	telemetrytest.WaitFor(t, 20*time.Second, "the io series on the Prometheus endpoint", func() bool {
		for _, l := range strings.Split(scrape(t, f.prom), "\n") {
			if strings.HasPrefix(l, "io_client_errors_total{") && containsAll(l, labels) {
				series = l
				return true
			}
		}
		return false
	})
	if !strings.HasSuffix(series, "} 3") {
		t.Errorf("%s: want the 3 failures the writes saw", series)
	}

	// A reload without the severe rule reaches the kernel: ENOSPC is still counted, but
	// no longer sent up.
	noSevere := strings.Replace(ioAgentConfig, "          track_errors: [EIO, ENXIO, ENODEV, ENOSPC, EROFS, EDQUOT, ESTALE]\n", "          track_errors: [EIO]\n", 1)
	cfg2, _, err := config.Parse("io-agent-test.yaml", fmt.Appendf(nil, noSevere, f.dir, f.otlp.GRPC, f.prom))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(context.Background(), cfg2); err != nil {
		t.Fatal(err)
	}
	before := h.Counters()
	if err := probe.Attach(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := unix.Write(int(file.Fd()), make([]byte, 4096)); err != unix.ENOSPC {
			t.Fatalf("write after the reload: %v", err)
		}
	}
	probe.Detach()
	if after := h.Counters(); after.EventsEmitted != before.EventsEmitted {
		t.Errorf("after the reload %d more records, want none: ENOSPC is no longer tracked", after.EventsEmitted-before.EventsEmitted)
	}
	samples, err := probe.Errors(nil)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, s := range samples {
		if s.Errno == uint16(unix.ENOSPC) {
			n += s.Count
		}
	}
	if n != 5 {
		t.Errorf("ENOSPC counted %d times in the kernel, want 5", n)
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestAgentNamesThePodOfAFailedOperation: a process in a kubepods cgroup (made for
// real, kubelet's layout with a containerd container) fails three writes; the event
// records, the anomaly span and the bundle name its pod and container, resolved from
// the cgroup id the kernel recorded and kubelet's log folders.
func TestAgentNamesThePodOfAFailedOperation(t *testing.T) {
	h := bpftest.New(t)
	node := podattrtest.New(t)
	probe, err := h.Probes().LoadIO()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { probe.Close() })
	mnt := t.TempDir()
	if err := unix.Mount("aodio", mnt, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	fill := filepath.Join(mnt, "fill")
	if err := os.WriteFile(fill, make([]byte, 1<<20), 0o644); err == nil {
		t.Fatal("a 1 MiB file fits a 64 KiB tmpfs")
	}

	f := &fixture{every: time.Second, h: h, otlp: telemetrytest.StartOTLP(t), prom: telemetrytest.FreeAddr(t), dir: t.TempDir()}
	cfg, _, err := config.Parse("io-agent-test.yaml", fmt.Appendf(nil, ioAgentConfig, f.dir, f.otlp.GRPC, f.prom))
	if err != nil {
		t.Fatal(err)
	}
	wo := node.Options()
	a, err := New(cfg, Options{
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Kernel:    h.Probes(),
		IO:        probe,
		ProcDir:   fixtures.Path("kernel-6.12"),
		Workloads: &wo,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.agent = a
	t.Cleanup(func() { f.stop(t) })
	if err := probe.Attach(); err != nil {
		t.Fatal(err)
	}
	// Three appends to the full file system, from inside the pod's container.
	cmd := exec.Command("sh", "-c", `for i in 1 2 3; do printf x >> "$1" || :; done`, "sh", fill)
	node.Start(t, cmd)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the pod's writes: %v", err)
	}
	probe.Detach()

	telemetrytest.WaitFor(t, 20*time.Second, "an io error bundle", func() bool {
		m, _ := filepath.Glob(filepath.Join(f.dir, "batches", "aod_quick_*_io_error.tar.zst"))
		return len(m) == 1
	})
	pod := map[string]string{
		podattr.KeyPodUID: podattrtest.PodUID, podattr.KeyPodName: podattrtest.PodName,
		podattr.KeyNamespace: podattrtest.Namespace, podattr.KeyContainerName: podattrtest.ContainerName,
		podattr.KeyContainerID: podattrtest.ContainerID, podattr.KeyContainerRuntime: podattr.RuntimeContainerd,
		podattr.KeyCgroupID: fmt.Sprintf("0x%x", node.CgroupID),
	}
	// The failed-operation records the OTLP receiver has, each checked for the pod.
	failedRecords := func(check bool) int {
		n := 0
		for _, ld := range f.otlp.Logs.AllLogs() {
			for _, rl := range ld.ResourceLogs().All() {
				for _, sl := range rl.ScopeLogs().All() {
					for _, lr := range sl.LogRecords().All() {
						if lr.EventName() != otelconv.EventFailed {
							continue
						}
						n++
						for k, want := range pod {
							if v, _ := lr.Attributes().Get(k); check && v.Str() != want {
								t.Errorf("event record %s = %q, want %q", k, v.Str(), want)
							}
						}
					}
				}
			}
		}
		return n
	}
	telemetrytest.WaitFor(t, 20*time.Second, "the pod's 3 failed-operation records", func() bool { return failedRecords(false) >= 3 })
	failedRecords(true)
	var span ptrace.Span
	for _, td := range f.otlp.Traces.AllTraces() {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					if s.Name() == "io.anomaly" {
						span = s
					}
				}
			}
		}
	}
	wantTop := podattrtest.Namespace + "/" + podattrtest.PodName + "/" + podattrtest.ContainerName + "="
	if v, ok := span.Attributes().Get(anomalypdata.AttrTopWorkloads); !ok || v.Slice().Len() != 1 ||
		!strings.HasPrefix(v.Slice().At(0).Str(), wantTop) {
		t.Errorf("anomaly span's top workloads %v, want %s<count>", v.AsRaw(), wantTop)
	}
	events, _ := span.Attributes().Get(anomalypdata.AttrEvents)
	an, _, err := anomalypdata.FromSpan(span)
	if err != nil || len(an.Events) == 0 {
		t.Fatalf("anomaly span's events: %v %q", err, events.Str())
	}
	if w := an.Workloads[node.CgroupID]; w.PodName != podattrtest.PodName || w.ContainerName != podattrtest.ContainerName {
		t.Errorf("anomaly span's events name %+v, want the pod", w)
	}
}
