//go:build linux

package smbreceiver

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/latencyhist"
	"github.com/linuxdiag/aod/internal/smb"
	"github.com/linuxdiag/aod/internal/smbevent"
	"github.com/linuxdiag/aod/receiver/smbotel"
)

// The session and tree of the share in testdata/proc/DebugData (kernel 6.12).
const (
	testSession = 0x936c11ff
	testTree    = 0x53dfe4a
)

// waitFor polls cond until it holds, failing the test after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// capture collects what the receiver hands its consumers.
type capture struct {
	logs    consumertest.LogsSink
	mu      sync.Mutex
	events  []smbevent.Event
	metrics chan [2]pmetric.Metrics
}

func (c *capture) consumers() Consumers {
	c.metrics = make(chan [2]pmetric.Metrics, 8)
	return Consumers{
		Metrics: func(_ context.Context, exp, explicit pmetric.Metrics) error {
			c.metrics <- [2]pmetric.Metrics{exp, explicit}
			return nil
		},
		Logs: c.logs.ConsumeLogs,
		Events: func(batch []smbevent.Event) {
			c.mu.Lock()
			c.events = append(c.events, batch...)
			c.mu.Unlock()
		},
	}
}

func (c *capture) eventCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

func logRecords(sink *consumertest.LogsSink) []plog.LogRecord {
	var out []plog.LogRecord
	for _, ld := range sink.AllLogs() {
		for i := range ld.ResourceLogs().Len() {
			sls := ld.ResourceLogs().At(i).ScopeLogs()
			for j := range sls.Len() {
				recs := sls.At(j).LogRecords()
				for k := range recs.Len() {
					out = append(out, recs.At(k))
				}
			}
		}
	}
	return out
}

func metricByName(t *testing.T, md pmetric.Metrics, name string) pmetric.Metric {
	t.Helper()
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := range ms.Len() {
		if ms.At(i).Name() == name {
			return ms.At(i)
		}
	}
	t.Fatalf("no metric %s", name)
	return pmetric.Metric{}
}

func attrsAre(attrs pcommon.Map, kv ...string) bool {
	if attrs.Len() != len(kv)/2 {
		return false
	}
	for i := 0; i < len(kv); i += 2 {
		if v, ok := attrs.Get(kv[i]); !ok || v.Str() != kv[i+1] {
			return false
		}
	}
	return true
}

func intPoint(t *testing.T, dps pmetric.NumberDataPointSlice, kv ...string) int64 {
	t.Helper()
	for i := range dps.Len() {
		if attrsAre(dps.At(i).Attributes(), kv...) {
			return dps.At(i).IntValue()
		}
	}
	t.Fatalf("no point with %v", kv)
	return 0
}

func TestKernelEventsAndHistogramsReachTheConsumers(t *testing.T) {
	k := loadKernel(t)
	var th [smb.NumCommands]bpf.Threshold
	th[smb.Read] = bpf.Threshold{Tracked: true, Latency: 100 * time.Millisecond}
	th[smb.Create] = bpf.Threshold{Tracked: true, Latency: time.Second}
	if err := k.probes.SetThresholds(&th); err != nil {
		t.Fatal(err)
	}
	if err := k.probes.SetErrorFilter(bpf.ErrorFilter{Statuses: []uint32{0xc0000034}}); err != nil {
		t.Fatal(err)
	}

	var c capture
	r, err := New(Settings{
		Config: Config{
			CollectionInterval: time.Hour, // collections are taken by the test
			Exponential:        true,
			Explicit:           true,
			ProcDir:            "testdata/proc",
		},
		Kernel:  k.probes,
		Version: "test",
	}, c.consumers())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})

	// A slow READ (a real 150 ms between enter and done), a READ under its threshold,
	// a CREATE failing with a tracked status, and one failing with an untracked status.
	wallBefore := time.Now()
	k.start(testTree, testSession, smb.Read, 1)
	time.Sleep(150 * time.Millisecond) // the request's latency, not a synchronisation
	k.complete(testTree, testSession, smb.Read, 1)
	k.start(testTree, testSession, smb.Read, 2)
	k.complete(testTree, testSession, smb.Read, 2)
	k.start(testTree, testSession, smb.Create, 3)
	k.failWith(testTree, testSession, smb.Create, 3, 0xc0000034, -2)
	k.start(testTree, testSession, smb.Create, 4)
	k.failWith(testTree, testSession, smb.Create, 4, 0xc0000011, -61)
	wallAfter := time.Now()

	// The programs wrote without waking the reader: the reader's deadline brings the
	// two events out anyway, to the detectors' hook and as log records.
	waitFor(t, "two log records", func() bool { return c.logs.LogRecordCount() == 2 })
	if n := c.eventCount(); n != 2 {
		t.Fatalf("%d events at the hook, want 2", n)
	}
	recs := logRecords(&c.logs)
	slow, failed := recs[0], recs[1]
	if slow.EventName() != smbotel.EventSlow || failed.EventName() != smbotel.EventFailed {
		t.Fatalf("records %q, %q", slow.EventName(), failed.EventName())
	}
	sa, fa := slow.Attributes().AsRaw(), failed.Attributes().AsRaw()
	for k, want := range map[string]any{
		smbotel.AttrCommand: "SMB2_READ", smbotel.AttrServer: "127.0.0.1", smbotel.AttrShare: "share",
		smbotel.AttrSessionID: "0x936c11ff", smbotel.AttrTreeID: "0x53dfe4a", smbotel.AttrMessageID: int64(1),
		smbotel.AttrPid: int64(os.Getpid()), smbotel.AttrTid: int64(k.tid), smbotel.AttrComm: k.comm(),
	} {
		if sa[k] != want {
			t.Errorf("slow record %s = %#v, want %#v", k, sa[k], want)
		}
	}
	for k, want := range map[string]any{
		smbotel.AttrCommand: "SMB2_CREATE", smbotel.AttrErrorType: "STATUS_OBJECT_NAME_NOT_FOUND",
		smbotel.AttrStatus: int64(0xc0000034), smbotel.AttrRc: int64(-2), smbotel.AttrMessageID: int64(3),
		smbotel.AttrShare: "share",
	} {
		if fa[k] != want {
			t.Errorf("failed record %s = %#v, want %#v", k, fa[k], want)
		}
	}
	// The latency is the kernel's, and the monotonic times became wall-clock times
	// inside the window in which the programs ran.
	latency := sa[smbotel.AttrDuration].(float64)
	if latency < 0.150 || latency > 0.150+wallAfter.Sub(wallBefore).Seconds() {
		t.Errorf("slow latency %v s", latency)
	}
	end := slow.Timestamp().AsTime()
	if end.Before(wallBefore.Add(-time.Millisecond)) || end.After(wallAfter.Add(time.Millisecond)) {
		t.Errorf("end %v outside [%v, %v]", end, wallBefore, wallAfter)
	}
	start, err := time.Parse(time.RFC3339Nano, sa[smbotel.AttrStartTime].(string))
	if err != nil {
		t.Fatal(err)
	}
	if d := end.Sub(start).Seconds() - latency; math.Abs(d) > 1e-6 {
		t.Errorf("start %v and end %v are %v s apart, latency %v s", start, end, end.Sub(start).Seconds(), latency)
	}

	// A collection: the kernel histograms, exactly, in both forms.
	kernelHist, err := k.probes.Histograms(nil)
	if err != nil {
		t.Fatal(err)
	}
	r.collect(context.Background(), time.Now())
	got := <-c.metrics
	exp, explicit := got[0], got[1]
	var readSample bpf.HistogramSample
	for _, s := range kernelHist {
		if s.Command == smb.Read {
			readSample = s
		}
	}
	dps := metricByName(t, exp, smbotel.MetricDuration).ExponentialHistogram().DataPoints()
	var read pmetric.ExponentialHistogramDataPoint
	for i := range dps.Len() {
		if attrsAre(dps.At(i).Attributes(), smbotel.AttrCommand, "SMB2_READ", smbotel.AttrServer, "127.0.0.1", smbotel.AttrShare, "share") {
			read = dps.At(i)
		}
	}
	if read.Count() != 2 || read.Sum() != float64(readSample.SumNs)/1e9 {
		t.Fatalf("READ count %d sum %v; kernel has 2 and %d ns", read.Count(), read.Sum(), readSample.SumNs)
	}
	// The slow READ's exact latency lies in an exported bucket that holds a request.
	idx := int32(math.Ceil(math.Log2(latency)*4)) - 1
	pos := read.Positive()
	if k := idx - pos.Offset(); k < 0 || int(k) >= pos.BucketCounts().Len() || pos.BucketCounts().At(int(k)) == 0 {
		t.Errorf("latency %v s: bucket %d (%v, %v] empty; offset %d counts %v", latency, idx,
			math.Exp2(float64(idx)/4), math.Exp2(float64(idx+1)/4), pos.Offset(), pos.BucketCounts().AsRaw())
	}
	for j, n := range readSample.Buckets {
		k := latencyhist.OTelIndex(j) - pos.Offset()
		var exported uint64
		if k >= 0 && int(k) < pos.BucketCounts().Len() {
			exported = pos.BucketCounts().At(int(k))
		}
		if exported != n {
			t.Errorf("kernel bucket %d has %d, exported %d", j, n, exported)
		}
	}
	edps := metricByName(t, explicit, smbotel.MetricDuration).Histogram().DataPoints()
	for i := range edps.Len() {
		if dp := edps.At(i); attrsAre(dp.Attributes(), smbotel.AttrCommand, "SMB2_READ", smbotel.AttrServer, "127.0.0.1", smbotel.AttrShare, "share") {
			var total uint64
			for _, n := range dp.BucketCounts().AsRaw() {
				total += n
			}
			if total != 2 || dp.Count() != 2 || dp.Sum() != read.Sum() {
				t.Errorf("explicit READ: buckets hold %d, count %d, sum %v", total, dp.Count(), dp.Sum())
			}
		}
	}

	// Failures by status, tracked or not; the cifs Stats; the receiver's own counters.
	errDps := metricByName(t, exp, smbotel.MetricErrors).Sum().DataPoints()
	for _, status := range []string{"STATUS_OBJECT_NAME_NOT_FOUND", "STATUS_END_OF_FILE"} {
		if n := intPoint(t, errDps, smbotel.AttrCommand, "SMB2_CREATE", smbotel.AttrErrorType, status, smbotel.AttrServer, "127.0.0.1", smbotel.AttrShare, "share"); n != 1 {
			t.Errorf("%s failures %d", status, n)
		}
	}
	if n := intPoint(t, metricByName(t, exp, "cifs.share.requests").Sum().DataPoints(), smbotel.AttrServer, "127.0.0.1", smbotel.AttrShare, "share"); n != 310 {
		t.Errorf("cifs.share.requests %d", n)
	}
	for name, want := range map[string]int64{"aod.events.read": 2, "aod.events.emitted": 2, "aod.requests.filtered": 2} {
		if n := intPoint(t, metricByName(t, exp, name).Sum().DataPoints()); n != want {
			t.Errorf("%s = %d, want %d", name, n, want)
		}
	}
	if n := intPoint(t, metricByName(t, exp, "aod.events.dropped").Sum().DataPoints(), smbotel.AttrDropReason, smbotel.DropQueueFull); n != 0 {
		t.Errorf("dropped %d", n)
	}
}

func TestEndedSessionsArePrunedAndKeepTheirCounts(t *testing.T) {
	k := loadKernel(t)
	var c capture
	r, err := New(Settings{
		Config: Config{CollectionInterval: time.Hour, PruneInterval: time.Nanosecond, ProcDir: "testdata/proc"},
		Kernel: k.probes,
	}, c.consumers())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })

	// One request on the listed session, one on a session DebugData no longer lists.
	const ended = 0x99
	k.start(testTree, testSession, smb.Write, 1)
	k.complete(testTree, testSession, smb.Write, 1)
	k.start(7, ended, smb.Write, 1)
	k.complete(7, ended, smb.Write, 1)

	count := func(md pmetric.Metrics, server, share string) uint64 {
		dps := metricByName(t, md, smbotel.MetricDuration).ExponentialHistogram().DataPoints()
		for i := range dps.Len() {
			if attrsAre(dps.At(i).Attributes(), smbotel.AttrCommand, "SMB2_WRITE", smbotel.AttrServer, server, smbotel.AttrShare, share) {
				return dps.At(i).Count()
			}
		}
		return 0
	}
	for round := range 2 {
		r.collect(context.Background(), time.Now())
		md := (<-c.metrics)[0]
		if n := count(md, "127.0.0.1", "share"); n != 1 {
			t.Errorf("round %d: listed session's writes %d", round, n)
		}
		if n := count(md, "", ""); n != 1 {
			t.Errorf("round %d: ended session's writes %d, want its one write kept", round, n)
		}
		hist, err := k.probes.Histograms(nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range hist {
			if s.SessionID == ended {
				t.Errorf("round %d: the ended session's histogram is still in the kernel", round)
			}
		}
	}
}

// timedProbes adds per-program run statistics to probes, as kernels report them under
// kernel.bpf_stats_enabled.
type timedProbes struct {
	*bpf.Probes
	stats map[string]*ebpf.ProgramStats
}

func (p timedProbes) ProgramStats() (map[string]*ebpf.ProgramStats, error) { return p.stats, nil }

func TestProgramRunTimeOnlyWhileTheKernelTimesPrograms(t *testing.T) {
	k := loadKernel(t)
	sysctl := filepath.Join(t.TempDir(), "bpf_stats_enabled")
	defer func(old string) { bpfStatsEnabled = old }(bpfStatsEnabled)
	bpfStatsEnabled = sysctl

	var c capture
	kernel := timedProbes{k.probes, map[string]*ebpf.ProgramStats{
		"aod_cmd_enter": {Runtime: 3 * time.Millisecond, RunCount: 1000},
		"aod_cmd_done":  {Runtime: 5 * time.Millisecond, RunCount: 990},
	}}
	r, err := New(Settings{Config: Config{CollectionInterval: time.Hour, ProcDir: "testdata/proc"}, Kernel: kernel}, c.consumers())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })

	has := func(md pmetric.Metrics, name string) bool {
		ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
		for i := range ms.Len() {
			if ms.At(i).Name() == name {
				return true
			}
		}
		return false
	}
	for _, on := range []string{"0\n", "1\n"} {
		if err := os.WriteFile(sysctl, []byte(on), 0o644); err != nil {
			t.Fatal(err)
		}
		r.collect(context.Background(), time.Now())
		md := (<-c.metrics)[0]
		if has(md, "aod.bpf.run_time") != (on == "1\n") {
			t.Fatalf("bpf_stats_enabled=%q: run time exported %v", on, has(md, "aod.bpf.run_time"))
		}
		if on == "1\n" {
			dps := metricByName(t, md, "aod.bpf.run_time").Sum().DataPoints()
			for i := range dps.Len() {
				if v, _ := dps.At(i).Attributes().Get(smbotel.AttrProgram); v.Str() == "aod_cmd_done" && dps.At(i).DoubleValue() != 0.005 {
					t.Errorf("done run time %v", dps.At(i).DoubleValue())
				}
			}
			if n := intPoint(t, metricByName(t, md, "aod.bpf.run_count").Sum().DataPoints(), smbotel.AttrProgram, "aod_cmd_enter"); n != 1000 {
				t.Errorf("enter runs %d", n)
			}
		}
	}
}
