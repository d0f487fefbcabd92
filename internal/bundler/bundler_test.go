package bundler

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/actions"
	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/archive"
	"github.com/linuxdiag/aod/internal/capture"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/logging/logtest"
	"github.com/linuxdiag/aod/internal/podattr"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/retention"
)

// crashEnv makes the test binary a bundler that is killed in the middle of a bundle.
const crashEnv = "AOD_BUNDLER_CRASH_OUTPUT"

func TestMain(m *testing.M) {
	if out := os.Getenv(crashEnv); out != "" {
		crashChild(out)
		return
	}
	os.Exit(m.Run())
}

// crashChild writes a bundle whose first action is done and appended while the
// second blocks; it prints "ready" once the temporary holds data, then waits to be
// killed.
func crashChild(out string) {
	b, err := New(Options{OutputDir: out, Actions: map[Key][]string{{"smb", "latency"}: {"big", "block"}},
		Extra: actions.Table{"big": bigAction(8 << 20), "block": {Name: "block", Run: func(ctx context.Context, _ *actions.Env, _ *actions.Output, _ *actions.Result) error {
			for {
				m, _ := filepath.Glob(filepath.Join(out, archive.BatchesDir, ".aod_quick_*.tmp"))
				if len(m) == 1 {
					if st, err := os.Stat(m[0]); err == nil && st.Size() > 0 {
						fmt.Println("ready")
						<-ctx.Done()
						return nil
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
		}}},
		ActionTimeout: time.Hour})
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	b.Collect(context.Background(), sample())
	os.Exit(1) // never reached: the parent kills us first
}

// bigAction writes n bytes of kernel-log-like text.
func bigAction(n int64) actions.Action {
	return actions.Action{Name: "big", Run: func(_ context.Context, _ *actions.Env, out *actions.Output, _ *actions.Result) error {
		w, err := out.Create("big.txt")
		if err != nil {
			return err
		}
		text := logText()
		for left := n; left > 0; {
			chunk := text[:min(left, int64(len(text)))]
			if _, err := w.Write(chunk); err != nil {
				return err
			}
			left -= int64(len(chunk))
		}
		return nil
	}}
}

// logText is 32 MiB of varied log lines, generated once: larger than the encoder's
// window, so repeating it does not flatter the compression.
var logText = sync.OnceValue(func() []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 0, 32<<20+256)
	for len(b) < 32<<20 {
		b = fmt.Appendf(b, "[%6d.%06d] CIFS: VFS: \\\\srv%d has not responded in %d seconds. Reconnecting... mid=%d\n",
			rng.IntN(999999), rng.IntN(999999), rng.IntN(100), rng.IntN(180), rng.Uint64())
	}
	return b[:32<<20]
})

func sample() anomaly.Anomaly {
	e := event.Event{Protocol: proto.SMB, Kind: event.KindSlow, Command: 9, StartNs: 1, EndNs: 2_000_000_001, MessageID: 7, Pid: 43, Tgid: 42,
		CgroupID: 0x9a7}
	copy(e.Comm[:], "fio")
	now := time.Now()
	// The event completed as the anomaly fired.
	return anomaly.Anomaly{TraceID: [16]byte{1, 2, 3}, SpanID: [8]byte{4, 5}, Protocol: "smb", Type: anomaly.TypeLatency,
		Rule: "count", Reason: "12 requests over 20ms in 1s", DetectedAt: now, Window: time.Second,
		Count: 12, Limit: 10, Threshold: 20 * time.Millisecond, MaxLatency: 2 * time.Second,
		TopCommands: []anomaly.Tally{{Value: "SMB2_WRITE", Count: 12}}, Events: []event.Event{e},
		TopWorkloads:    []anomaly.Tally{{Value: "shop/web/app", Count: 12}},
		Workloads:       map[uint64]podattr.Workload{0x9a7: {Cgroup: "/kubepods/pod1", PodName: "web", Namespace: "shop", ContainerName: "app"}},
		EventTimeOffset: now.UnixNano() - int64(e.EndNs)}
}

func newBundler(t *testing.T, o Options) *Bundler {
	t.Helper()
	if o.OutputDir == "" {
		o.OutputDir = t.TempDir()
	}
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Shutdown(context.Background()) })
	return b
}

// extract unpacks a bundle with the system's tar and returns its top directory and
// manifest.
func extract(t *testing.T, path string) (string, Manifest) {
	t.Helper()
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("tar not installed")
	}
	dst := t.TempDir()
	if out, err := exec.Command("tar", "--zstd", "-xf", path, "-C", dst).CombinedOutput(); err != nil {
		t.Fatalf("tar --zstd -xf %s: %v: %s", path, err, out)
	}
	top := filepath.Join(dst, strings.TrimSuffix(filepath.Base(path), archive.BundleSuffix))
	b, err := os.ReadFile(filepath.Join(top, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("manifest: %v\n%s", err, b)
	}
	return top, m
}

func result(t *testing.T, m Manifest, name string) actions.Result {
	t.Helper()
	for _, r := range m.Actions {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("manifest lists no %q: %+v", name, m.Actions)
	return actions.Result{}
}

// checkFiles verifies every file an action reported is in the extracted bundle with
// the reported size.
func checkFiles(t *testing.T, top string, m Manifest) {
	t.Helper()
	for _, r := range m.Actions {
		var total int64
		for _, f := range r.Files {
			st, err := os.Stat(filepath.Join(top, f))
			if err != nil {
				t.Errorf("%s: %v", r.Name, err)
				continue
			}
			total += st.Size()
		}
		if total != r.Bytes {
			t.Errorf("%s: files hold %d bytes, manifest says %d", r.Name, total, r.Bytes)
		}
	}
}

func TestSnapshotOnThisMachine(t *testing.T) {
	var specs []capture.Spec
	if _, err := actions.LookPath("tcpdump"); err == nil && os.Geteuid() == 0 {
		specs = append(specs, capture.Spec{Protocol: "smb", Tool: capture.ToolTcpdump, Args: []string{"-i", "lo", "-C", "1", "-W", "2"}})
	}
	inflight := func(context.Context) ([]bpf.InFlightRequest, error) {
		return []bpf.InFlightRequest{{Command: 8, StartNs: 1, Age: time.Minute, MessageID: 99}}, nil
	}
	out := t.TempDir()
	b := newBundler(t, Options{OutputDir: out, Captures: specs, Inflight: inflight, ActionTimeout: 20 * time.Second})
	if len(specs) > 0 {
		// Wait for tcpdump's first file, so its snapshot has something to copy.
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(out, "captures", "smb", "tcpdump", "smb.pcap0")); err == nil {
				break
			}
			if time.Now().After(deadline) || b.Captures()["smb/tcpdump"].Disabled {
				t.Fatalf("tcpdump did not start: %+v", b.Captures())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	rep, err := b.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := archive.ParseBundleName(filepath.Base(rep.Path)); !ok || !strings.HasSuffix(rep.Path, "_aod_snapshot.tar.zst") ||
		filepath.Dir(rep.Path) != filepath.Join(out, archive.BatchesDir) {
		t.Fatalf("bundle path %q", rep.Path)
	}
	top, m := extract(t, rep.Path)
	want := actions.Builtin().Names()
	for _, s := range specs {
		want = append(want, s.Tool)
	}
	slices.Sort(want)
	var got []string
	for _, r := range m.Actions {
		got = append(got, r.Name)
		t.Logf("%-12s %-8s %6d bytes %v %s%s", r.Name, r.Status, r.Bytes, r.Duration, r.Skipped, r.Error)
		switch r.Status {
		case actions.StatusOK:
			if len(r.Files) == 0 {
				t.Errorf("%s: ok without a file", r.Name)
			}
		case actions.StatusSkipped:
			if r.Skipped == "" {
				t.Errorf("%s: skipped without a reason", r.Name)
			}
		default:
			t.Errorf("%s: %s on this machine: %s", r.Name, r.Status, r.Error)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("manifest actions %v, want %v", got, want)
	}
	checkFiles(t, top, m)
	// Sources every Linux host has.
	for _, name := range []string{"mounts", "inflight", "sockets"} {
		if r := result(t, m, name); r.Status != actions.StatusOK {
			t.Errorf("%s: %+v", name, r)
		}
	}
	if r := result(t, m, "events"); r.Status != actions.StatusSkipped {
		t.Errorf("events of a snapshot: %+v", r)
	}
	if len(specs) > 0 && result(t, m, "tcpdump").Status != actions.StatusOK {
		t.Errorf("tcpdump snapshot: %+v", result(t, m, "tcpdump"))
	}
	if m.Format != ManifestFormat || m.Anomaly.Type != anomaly.TypeSnapshot || m.Anomaly.Protocol != SnapshotProtocol ||
		m.Host.KernelRelease == "" || m.Agent.Version == "" || m.Window.LookbackS != config.Defaults().Collection.Lookback.Seconds() {
		t.Errorf("manifest header %+v", m)
	}
	if st := b.Stats(); st.Bundles != 1 || st.BundleBytes != uint64(rep.Bytes) {
		t.Errorf("stats %+v", st)
	}
}

func TestCollectManifestAndEvents(t *testing.T) {
	b := newBundler(t, Options{Actions: map[Key][]string{{"smb", "latency"}: {"mounts"}}})
	a := sample()
	rep, err := b.Collect(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("aod_quick_%d_smb_latency.tar.zst", a.DetectedAt.UnixNano())
	if filepath.Base(rep.Path) != want {
		t.Fatalf("name %q, want %q", filepath.Base(rep.Path), want)
	}
	top, m := extract(t, rep.Path)
	var names []string
	for _, r := range m.Actions {
		names = append(names, r.Name)
	}
	// The configured actions, then the ones every bundle gets.
	if !slices.Equal(names, append([]string{"mounts"}, actions.Always[proto.SMB]...)) {
		t.Fatalf("actions %v", names)
	}
	ai := m.Anomaly
	if ai.TraceID != "01020300000000000000000000000000" || ai.SpanID != "0405000000000000" || ai.Rule != "count" ||
		ai.Count != 12 || ai.Limit != 10 || ai.ThresholdS != 0.02 || ai.Events != 1 ||
		len(ai.TopCommands) != 1 || ai.TopCommands[0] != (Tally{"SMB2_WRITE", 12}) ||
		len(ai.TopWorkloads) != 1 || ai.TopWorkloads[0] != (Tally{"shop/web/app", 12}) {
		t.Fatalf("anomaly %+v", ai)
	}
	wantWorkloads := []map[string]string{{"aod.cgroup.id": "0x9a7", "process.linux.cgroup": "/kubepods/pod1",
		"k8s.pod.name": "web", "k8s.namespace.name": "shop", "k8s.container.name": "app"}}
	if !reflect.DeepEqual(ai.Workloads, wantWorkloads) {
		t.Errorf("workloads %v, want %v", ai.Workloads, wantWorkloads)
	}
	if !m.Window.Until.After(m.Window.Since) || !m.Window.Since.Equal(a.DetectedAt.Add(-config.Defaults().Collection.Lookback)) {
		t.Fatalf("window %+v", m.Window)
	}
	ev, err := os.ReadFile(filepath.Join(top, "events.jsonl"))
	completed := `"time":"` + a.DetectedAt.UTC().Format(time.RFC3339Nano) + `"`
	if err != nil || !strings.Contains(string(ev), `"smb.command":"SMB2_WRITE"`) || !strings.Contains(string(ev), `"thread.name":"fio"`) ||
		!strings.Contains(string(ev), `"aod.cgroup.id":"0x9a7","process.linux.cgroup":"/kubepods/pod1","k8s.pod.name":"web"`) ||
		!strings.Contains(string(ev), completed) {
		t.Fatalf("events.jsonl: %v %s", err, ev)
	}
	st, _ := os.Stat(rep.Path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("bundle mode %v", st.Mode())
	}
}

func TestHangingActionTimesOut(t *testing.T) {
	b := newBundler(t, Options{ActionTimeout: 200 * time.Millisecond,
		Actions: map[Key][]string{{"smb", "latency"}: {"hang", "mounts"}},
		Extra:   actions.Table{"hang": actions.Command("hang", "hang.txt", "sleep", "100")}})
	rep, err := b.Collect(context.Background(), sample())
	if err != nil {
		t.Fatal(err)
	}
	top, m := extract(t, rep.Path)
	if r := result(t, m, "hang"); r.Status != actions.StatusTimeout || !strings.Contains(r.Error, "timed out after 200ms") {
		t.Fatalf("hang: %+v", r)
	}
	if r := result(t, m, "mounts"); r.Status != actions.StatusOK {
		t.Fatalf("mounts: %+v", r)
	}
	checkFiles(t, top, m)
}

func TestUnreadableFileIsNotFatal(t *testing.T) {
	b := newBundler(t, Options{
		Actions: map[Key][]string{{"smb", "error"}: {"unreadable", "mounts"}},
		Extra:   actions.Table{"unreadable": actions.File("unreadable", "mem.bin", "/proc/self/mem", "none")}})
	a := sample()
	a.Type = anomaly.TypeError
	rep, err := b.Collect(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	_, m := extract(t, rep.Path)
	if r := result(t, m, "unreadable"); r.Status != actions.StatusFailed || !strings.Contains(r.Error, "/proc/self/mem") {
		t.Fatalf("unreadable: %+v", r)
	}
	if r := result(t, m, "mounts"); r.Status != actions.StatusOK {
		t.Fatalf("mounts: %+v", r)
	}
}

func TestConcurrentAnomaliesMakeSeparateBundles(t *testing.T) {
	b := newBundler(t, Options{MaxPending: 4, Concurrency: 2,
		Actions: map[Key][]string{{"smb", "latency"}: {"mounts", "big"}},
		Extra:   actions.Table{"big": bigAction(1 << 20)}})
	a := sample() // the same detection time for all: names must still differ
	var wg sync.WaitGroup
	reps := make([]Report, 4)
	errs := make([]error, 4)
	for i := range reps {
		wg.Go(func() {
			ai := a
			ai.Rule = fmt.Sprintf("rule%d", i)
			reps[i], errs[i] = b.Collect(context.Background(), ai)
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, rep := range reps {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if seen[rep.Path] {
			t.Fatalf("two anomalies wrote %s", rep.Path)
		}
		seen[rep.Path] = true
		top, m := extract(t, rep.Path)
		if m.Anomaly.Rule != fmt.Sprintf("rule%d", i) || result(t, m, "big").Bytes != 1<<20 {
			t.Fatalf("bundle %d: %+v", i, m.Anomaly)
		}
		checkFiles(t, top, m)
	}
	entries, _ := os.ReadDir(filepath.Dir(reps[0].Path))
	if len(entries) != 4 {
		t.Fatalf("batches holds %d entries, want the 4 bundles", len(entries))
	}
}

func TestTooManyPendingIsSkipped(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	log, logs := logtest.New()
	b := newBundler(t, Options{MaxPending: 1, Logger: log,
		Actions: map[Key][]string{{"smb", "latency"}: {"gate"}},
		Extra: actions.Table{"gate": {Name: "gate", Run: func(context.Context, *actions.Env, *actions.Output, *actions.Result) error {
			close(started)
			<-release
			return nil
		}}}})
	done := make(chan error)
	go func() { _, err := b.Collect(context.Background(), sample()); done <- err }()
	<-started
	if _, err := b.Collect(context.Background(), sample()); !errors.Is(err, ErrBusy) {
		t.Fatalf("second bundle: %v, want ErrBusy", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.SkippedBusy != 1 || st.Bundles != 1 {
		t.Fatalf("stats %+v", st)
	}
	if logs.CountContaining("bundle skipped") != 1 {
		t.Fatalf("skip not logged:\n%s", logs)
	}
}

func TestShutdownCancelsAndCompletes(t *testing.T) {
	b, err := New(Options{OutputDir: t.TempDir(), ActionTimeout: time.Hour,
		Actions: map[Key][]string{{"smb", "latency"}: {"hang"}},
		Extra:   actions.Table{"hang": actions.Command("hang", "hang.txt", "sleep", "1000")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	type res struct {
		rep Report
		err error
	}
	done := make(chan res)
	go func() { r, err := b.Collect(context.Background(), sample()); done <- res{r, err} }()
	// Shut down once the hanging program runs.
	deadline := time.Now().Add(30 * time.Second)
	for !childRunning("sleep") {
		if time.Now().After(deadline) {
			t.Fatal("the action never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	_, m := extract(t, r.rep.Path)
	if h := result(t, m, "hang"); h.Status != actions.StatusCanceled {
		t.Fatalf("hang: %+v", h)
	}
	if _, err := b.Collect(context.Background(), sample()); !errors.Is(err, ErrClosed) {
		t.Fatalf("collect after shutdown: %v", err)
	}
}

// childRunning reports whether a child process of this test named comm exists.
func childRunning(comm string) bool {
	entries, _ := os.ReadDir("/proc")
	me := fmt.Sprint(os.Getpid())
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		f := strings.Fields(s[close+1:])
		if s[open+1:close] == comm && len(f) > 1 && f[1] == me {
			return true
		}
	}
	return false
}

func TestFreeSpaceFloor(t *testing.T) {
	out := t.TempDir()
	d, err := archive.OpenDir(out)
	if err != nil {
		t.Fatal(err)
	}
	free, _ := d.Available()
	d.Close()

	b := newBundler(t, Options{OutputDir: out, MinFreeBytes: free + 1<<30})
	if _, err := b.Collect(context.Background(), sample()); !errors.Is(err, ErrLowSpace) {
		t.Fatalf("below the floor: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(out, archive.BatchesDir)); len(entries) != 0 {
		t.Fatalf("wrote %v below the floor", entries)
	}
	if b.Stats().SkippedLowSpace != 1 {
		t.Fatalf("stats %+v", b.Stats())
	}

	// Just above the floor: the bundle is made with smaller action limits.
	b = newBundler(t, Options{OutputDir: out, MinFreeBytes: free - 64<<20, MaxActionBytes: 1 << 30,
		Actions: map[Key][]string{{"smb", "latency"}: {"big"}}, Extra: actions.Table{"big": bigAction(32 << 20)}})
	rep, err := b.Collect(context.Background(), sample())
	if err != nil {
		t.Fatal(err)
	}
	_, m := extract(t, rep.Path)
	big := result(t, m, "big")
	if !m.Limits.Shrunk || m.Limits.ActionBytes >= 64<<20 || !big.Truncated || big.Bytes != m.Limits.ActionBytes {
		t.Fatalf("limits %+v, big %+v", m.Limits, big)
	}
	if b.Stats().Shrunk != 1 {
		t.Fatalf("stats %+v", b.Stats())
	}
}

func TestSymlinkedBatchesIsRefused(t *testing.T) {
	out, elsewhere := t.TempDir(), t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(out, archive.BatchesDir)); err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{OutputDir: out})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err == nil {
		t.Fatal("started on a symlinked batches directory")
	}
	if _, err := b.Collect(context.Background(), sample()); err == nil {
		t.Fatal("collected into a symlinked batches directory")
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Fatalf("wrote through the symlink: %v", entries)
	}
}

func TestNewRejects(t *testing.T) {
	for _, o := range []Options{
		{},
		{OutputDir: "/x", ZstdLevel: 30},
		{OutputDir: "/x", Actions: map[Key][]string{{"smb", "latency"}: {"nosuch"}}},
		{OutputDir: "/x", Captures: []capture.Spec{{Protocol: "smb", Tool: "tcpdump", Args: []string{"-w", "x"}}}},
		{OutputDir: "/x", Captures: []capture.Spec{
			{Protocol: "smb", Tool: "tcpdump", Args: []string{"-C", "1", "-W", "2"}},
			{Protocol: "nfs", Tool: "tcpdump", Args: []string{"-C", "1", "-W", "2"}}}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

func TestKilledMidBundleLeavesNoFinalBundle(t *testing.T) {
	out := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+out)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child said %q, %v", line, err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	batches := filepath.Join(out, archive.BatchesDir)
	entries, _ := os.ReadDir(batches)
	var temps []string
	for _, e := range entries {
		if _, ok := archive.ParseBundleName(e.Name()); ok {
			t.Fatalf("a bundle exists under its final name after the kill: %s", e.Name())
		}
		if archive.IsTempName(e.Name()) {
			temps = append(temps, e.Name())
		}
	}
	if len(temps) != 1 {
		t.Fatalf("want the killed bundle's temporary, have %v", entries)
	}
	// The writer is dead and its lock gone: once past the grace period, retention
	// removes the leftover.
	sw, err := retention.New(retention.Options{OutputDir: out, Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := sw.Sweep()
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Deleted) != 1 || rep.Deleted[0].Name != temps[0] {
		t.Fatalf("sweep %+v", rep)
	}
	if entries, _ := os.ReadDir(batches); len(entries) != 0 {
		t.Fatalf("left %v", entries)
	}
}

// peakHeap samples HeapInuse until stop is closed and returns the highest value.
func peakHeap(stop <-chan struct{}) <-chan uint64 {
	res := make(chan uint64, 1)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				res <- peak
				return
			case <-t.C:
			}
		}
	}()
	return res
}

func TestMemoryStaysBoundedWhileStreaming(t *testing.T) {
	const size = 100 << 20
	b := newBundler(t, Options{MaxActionBytes: size,
		Actions: map[Key][]string{{"smb", "latency"}: {"big"}}, Extra: actions.Table{"big": bigAction(size)}})
	logText()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := make(chan struct{})
	peak := peakHeap(stop)
	rep, err := b.Collect(context.Background(), sample())
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	growth := int64(<-peak) - int64(before.HeapInuse)
	t.Logf("100 MiB bundle (%d bytes compressed): heap in use grew by at most %.1f MiB", rep.Bytes, float64(growth)/(1<<20))
	// The data never sits in memory: a fifth of it would already mean buffering.
	if growth > size/5 {
		t.Fatalf("heap grew by %d bytes while streaming %d", growth, size)
	}
}

// BenchmarkBundle100MiB measures bundle throughput for one action of 100 MiB of
// log text at each compression level, and the heap's peak growth while streaming.
func BenchmarkBundle100MiB(b *testing.B) {
	const size = 100 << 20
	for _, level := range []int{1, 3, 9} {
		b.Run(fmt.Sprintf("zstd%d", level), func(b *testing.B) {
			bu, err := New(Options{OutputDir: b.TempDir(), MaxActionBytes: size, ZstdLevel: level,
				Actions: map[Key][]string{{"smb", "latency"}: {"big"}}, Extra: actions.Table{"big": bigAction(size)}})
			if err != nil {
				b.Fatal(err)
			}
			a := sample()
			logText()
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			var peakMax uint64
			var compressed int64
			b.SetBytes(size)
			b.ResetTimer()
			for b.Loop() {
				stop := make(chan struct{})
				peak := peakHeap(stop)
				rep, err := bu.Collect(context.Background(), a)
				close(stop)
				if err != nil {
					b.Fatal(err)
				}
				peakMax = max(peakMax, <-peak)
				compressed = rep.Bytes
				os.Remove(rep.Path)
			}
			b.ReportMetric(float64(compressed)/(1<<20), "bundle-MiB")
			b.ReportMetric(float64(int64(peakMax)-int64(before.HeapInuse))/(1<<20), "peak-heap-growth-MiB")
		})
	}
}

// An NFS anomaly's bundle gets its configured actions, then NFS's always-run ones:
// its events, sockets, the client's statistics, and what each server says.
func TestCollectNFSAlwaysRunsTheNFSActions(t *testing.T) {
	b := newBundler(t, Options{Actions: map[Key][]string{{"nfs", "latency"}: {"mounts"}}})
	a := sample()
	a.Protocol, a.Events, a.TopCommands = "nfs", nil, nil
	rep, err := b.Collect(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	top, m := extract(t, rep.Path)
	var names []string
	for _, r := range m.Actions {
		names = append(names, r.Name)
		if r.Name == actions.NameMountstats && (r.Status != actions.StatusOK || r.Source != "/proc/self/mountstats") {
			t.Errorf("mountstats: %+v", r)
		}
	}
	want := []string{"mounts", "events", "sockets", "mountstats", "nfs_rpc_stats", "nfs_tasks", "nfsstat", "rpcinfo", "showmount"}
	if !slices.Equal(names, want) {
		t.Fatalf("actions %v, want %v", names, want)
	}
	if _, err := os.Stat(filepath.Join(top, actions.MemberMountstats)); err != nil {
		t.Error(err)
	}
	checkFiles(t, top, m)
}

// The shutdown dump runs every configured action once, then the ones every bundle of
// each protocol gets, into aod_quick_<ts>_aod_shutdown.tar.zst.
func TestShutdownDumpRunsEveryConfiguredActionOnce(t *testing.T) {
	b := newBundler(t, Options{Actions: map[Key][]string{
		{"smb", "latency"}:  {"mounts", "stats"},
		{"smb", "error"}:    {"stats", "mounts", "syslogs"},
		{"smb", "sockconn"}: {"mounts"},
	}})
	rep, err := b.ShutdownDump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := filepath.Match("aod_quick_*_aod_shutdown.tar.zst", filepath.Base(rep.Path)); !ok {
		t.Errorf("bundle %s", rep.Path)
	}
	top, m := extract(t, rep.Path)
	var names []string
	for _, r := range m.Actions {
		names = append(names, r.Name)
	}
	// SMB's always-run actions, then those of NFS that SMB's do not include: a
	// shutdown dump is of the whole host.
	want := append([]string{"stats", "mounts", "syslogs"}, actions.Always[proto.SMB]...)
	want = append(want, actions.NameMountstats, actions.NameNFSRPC, actions.NameNFSTasks, actions.NameNfsstat, actions.NameRpcinfo, actions.NameShowmount)
	if !slices.Equal(names, want) || m.Anomaly.Type != anomaly.TypeShutdown || m.Anomaly.Protocol != SnapshotProtocol {
		t.Fatalf("actions %v (want %v), anomaly %+v", names, want, m.Anomaly)
	}
	if _, err := os.Stat(filepath.Join(top, actions.MemberMounts)); err != nil {
		t.Error(err)
	}
	checkFiles(t, top, m)
}

// An action that ignores its context cannot hold the dump past half of what is left
// of the stop timeout: it is abandoned, recorded with the reason, and the others'
// output is kept.
func TestShutdownDumpIsBoundedByTheStopTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	stuck := actions.Action{Name: "stuck", Run: func(context.Context, *actions.Env, *actions.Output, *actions.Result) error {
		<-release // a read stuck in the kernel
		return nil
	}}
	b := newBundler(t, Options{ActionTimeout: time.Hour,
		Actions: map[Key][]string{{"smb", "latency"}: {"stuck", "mounts"}},
		Extra:   actions.Table{"stuck": stuck}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*actions.AbandonGrace+4*time.Second)
	defer cancel()
	rep, err := b.ShutdownDump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Error("the dump used the whole stop timeout")
	}
	top, m := extract(t, rep.Path)
	if r := result(t, m, "stuck"); r.Status != actions.StatusCanceled || !strings.Contains(r.Error, "share of the stop timeout") {
		t.Errorf("stuck: %+v", r)
	}
	if r := result(t, m, "mounts"); r.Status != actions.StatusOK {
		t.Errorf("mounts: %+v", r)
	}
	checkFiles(t, top, m)
	short, cancel2 := context.WithTimeout(context.Background(), actions.AbandonGrace)
	defer cancel2()
	if _, err := b.ShutdownDump(short); !errors.Is(err, ErrNoTime) {
		t.Errorf("dump with %s left: %v", actions.AbandonGrace, err)
	}
}
