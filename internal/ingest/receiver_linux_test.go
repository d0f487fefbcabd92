//go:build linux

package ingest

import (
	"context"
	"maps"
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
	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/bpf/bpftest"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/fixtures"
	"github.com/linuxdiag/aod/internal/latencyhist"
	"github.com/linuxdiag/aod/internal/otelconv"
	"github.com/linuxdiag/aod/internal/smb"
)

// The session and tree of the share in testdata/kernel-6.12/DebugData.
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
	events  []event.Event
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
		Events: func(batch []event.Event) {
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
	h := bpftest.New(t)
	h.SetThresholds(map[uint16]time.Duration{smb.Read: 100 * time.Millisecond, smb.Create: time.Second})
	h.SetErrorFilter(bpf.ErrorFilter{Statuses: []uint32{0xc0000034}})

	var c capture
	r, err := New(Settings{
		Config: Config{
			CollectionInterval: time.Hour, // collections are taken by the test
			Exponential:        true,
			Explicit:           true,
			ProcDir:            fixtures.Path("kernel-6.12"),
		},
		Kernel:  h.Probes(),
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

	// A slow READ of 150 ms, a READ under its threshold, a CREATE failing with a
	// tracked status, and one failing with an untracked status.
	wallBefore := time.Now()
	latency := h.Request(bpftest.Request{Session: testSession, Tree: testTree, Command: smb.Read, Mid: 1, Latency: 150 * time.Millisecond})
	h.Enter(testSession, testTree, smb.Read, 2)
	h.Done(testSession, testTree, smb.Read, 2)
	h.Enter(testSession, testTree, smb.Create, 3)
	h.Fail(testSession, testTree, smb.Create, 3, 0xc0000034, -2)
	h.Enter(testSession, testTree, smb.Create, 4)
	h.Fail(testSession, testTree, smb.Create, 4, 0xc0000011, -61)
	wallAfter := time.Now()
	// Two READs failing at EOF, under the threshold and untracked (no events): their
	// latencies are measured apart from the successful READs'.
	var eofLatencies []time.Duration
	for _, l := range []time.Duration{20 * time.Millisecond, 60 * time.Millisecond} {
		eofLatencies = append(eofLatencies, h.Request(bpftest.Request{Session: testSession, Tree: testTree, Command: smb.Read, Latency: l, Status: 0xc0000011, Rc: -61}))
	}

	// The programs wrote without waking the reader: the reader's deadline brings the
	// two events out anyway, to the detectors' hook and as log records.
	waitFor(t, "two log records", func() bool { return c.logs.LogRecordCount() == 2 })
	if n := c.eventCount(); n != 2 {
		t.Fatalf("%d events at the hook, want 2", n)
	}
	recs := logRecords(&c.logs)
	slow, failed := recs[0], recs[1]
	if slow.EventName() != otelconv.EventSlow || failed.EventName() != otelconv.EventFailed {
		t.Fatalf("records %q, %q", slow.EventName(), failed.EventName())
	}
	sa, fa := slow.Attributes().AsRaw(), failed.Attributes().AsRaw()
	for k, want := range map[string]any{
		smb.Table.Keys.Command: "SMB2_READ", otelconv.AttrServer: "127.0.0.1", smb.Table.Keys.Share: "share",
		smb.Table.Keys.SessionID: "0x936c11ff", smb.Table.Keys.TreeID: "0x53dfe4a", smb.Table.Keys.MessageID: int64(1),
		otelconv.AttrPid: int64(os.Getpid()), otelconv.AttrTid: int64(h.Tid()), otelconv.AttrComm: h.Comm(),
		smb.Table.Keys.OpDuration: latency.Seconds(),
	} {
		if sa[k] != want {
			t.Errorf("slow record %s = %#v, want %#v", k, sa[k], want)
		}
	}
	for k, want := range map[string]any{
		smb.Table.Keys.Command: "SMB2_CREATE", otelconv.AttrErrorType: "STATUS_OBJECT_NAME_NOT_FOUND",
		smb.Table.Keys.Status: int64(0xc0000034), smb.Table.Keys.Rc: int64(-2), smb.Table.Keys.MessageID: int64(3),
		smb.Table.Keys.Share: "share",
	} {
		if fa[k] != want {
			t.Errorf("failed record %s = %#v, want %#v", k, fa[k], want)
		}
	}
	// The completion's monotonic time became a wall-clock time inside the window in
	// which the programs ran, and the start is the latency before it.
	end := slow.Timestamp().AsTime()
	if end.Before(wallBefore.Add(-time.Millisecond)) || end.After(wallAfter.Add(time.Millisecond)) {
		t.Errorf("end %v outside [%v, %v]", end, wallBefore, wallAfter)
	}
	start, err := time.Parse(time.RFC3339Nano, sa[smb.Table.Keys.OpStartTime].(string))
	if err != nil {
		t.Fatal(err)
	}
	if d := end.Sub(start) - latency; d.Abs() > time.Microsecond {
		t.Errorf("start %v and end %v are %v apart, latency %v", start, end, end.Sub(start), latency)
	}

	// A collection: the kernel histograms, exactly, in both forms.
	kernelHist := h.Histograms()
	r.collect(context.Background(), time.Now())
	got := <-c.metrics
	exp, explicit := got[0], got[1]
	var readSample bpf.HistogramSample
	for _, s := range kernelHist {
		if s.Command == smb.Read && s.Status == 0 {
			readSample = s
		}
	}
	dps := metricByName(t, exp, smb.Table.Keys.Duration).ExponentialHistogram().DataPoints()
	var read pmetric.ExponentialHistogramDataPoint
	for i := range dps.Len() {
		if attrsAre(dps.At(i).Attributes(), smb.Table.Keys.Command, "SMB2_READ", otelconv.AttrServer, "127.0.0.1", smb.Table.Keys.Share, "share") {
			read = dps.At(i)
		}
	}
	if read.Count() != 2 || read.Sum() != float64(readSample.SumNs)/1e9 {
		t.Fatalf("READ count %d sum %v; kernel has 2 and %d ns", read.Count(), read.Sum(), readSample.SumNs)
	}
	// The slow READ's exact latency lies in an exported bucket that holds a request.
	idx := int32(math.Ceil(math.Log2(latency.Seconds())*4)) - 1
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
	edps := metricByName(t, explicit, smb.Table.Keys.Duration).Histogram().DataPoints()
	for i := range edps.Len() {
		if dp := edps.At(i); attrsAre(dp.Attributes(), smb.Table.Keys.Command, "SMB2_READ", otelconv.AttrServer, "127.0.0.1", smb.Table.Keys.Share, "share") {
			var total uint64
			for _, n := range dp.BucketCounts().AsRaw() {
				total += n
			}
			if total != 2 || dp.Count() != 2 || dp.Sum() != read.Sum() {
				t.Errorf("explicit READ: buckets hold %d, count %d, sum %v", total, dp.Count(), dp.Sum())
			}
		}
	}

	// The failed READs' series carries error.type, and each known latency sits in the
	// exported bucket whose bounds hold it.
	var eof pmetric.ExponentialHistogramDataPoint
	for i := range dps.Len() {
		if attrsAre(dps.At(i).Attributes(), smb.Table.Keys.Command, "SMB2_READ", otelconv.AttrErrorType, "STATUS_END_OF_FILE", otelconv.AttrServer, "127.0.0.1", smb.Table.Keys.Share, "share") {
			eof = dps.At(i)
		}
	}
	if eof.Count() != 2 || eof.Sum() != float64(eofLatencies[0]+eofLatencies[1])/1e9 {
		t.Errorf("failed READs: count %d sum %v; want 2 and %v", eof.Count(), eof.Sum(), eofLatencies[0]+eofLatencies[1])
	}
	wantEOF := map[int32]uint64{}
	for _, l := range eofLatencies {
		wantEOF[int32(math.Ceil(math.Log2(l.Seconds())*4))-1]++
	}
	gotEOF := map[int32]uint64{}
	for k, n := range eof.Positive().BucketCounts().AsRaw() {
		if n != 0 {
			gotEOF[eof.Positive().Offset()+int32(k)] = n
		}
	}
	if !maps.Equal(gotEOF, wantEOF) {
		t.Errorf("failed READs of %v in exported buckets %v, want %v", eofLatencies, gotEOF, wantEOF)
	}

	// Failures by status, tracked or not; the cifs Stats; the receiver's own counters.
	errDps := metricByName(t, exp, smb.Table.Keys.Errors).Sum().DataPoints()
	for _, status := range []string{"STATUS_OBJECT_NAME_NOT_FOUND", "STATUS_END_OF_FILE"} {
		if n := intPoint(t, errDps, smb.Table.Keys.Command, "SMB2_CREATE", otelconv.AttrErrorType, status, otelconv.AttrServer, "127.0.0.1", smb.Table.Keys.Share, "share"); n != 1 {
			t.Errorf("%s failures %d", status, n)
		}
	}
	if n := intPoint(t, metricByName(t, exp, "cifs.share.requests").Sum().DataPoints(), otelconv.AttrServer, "127.0.0.1", smb.Table.Keys.Share, "share"); n != 310 {
		t.Errorf("cifs.share.requests %d", n)
	}
	for name, want := range map[string]int64{"aod.events.read": 2, "aod.events.emitted": 2, "aod.requests.filtered": 4} {
		if n := intPoint(t, metricByName(t, exp, name).Sum().DataPoints()); n != want {
			t.Errorf("%s = %d, want %d", name, n, want)
		}
	}
	if n := intPoint(t, metricByName(t, exp, "aod.events.dropped").Sum().DataPoints(), otelconv.AttrDropReason, otelconv.DropQueueFull); n != 0 {
		t.Errorf("dropped %d", n)
	}
}

func TestEndedSessionsArePrunedAndKeepTheirCounts(t *testing.T) {
	h := bpftest.New(t)
	var c capture
	r, err := New(Settings{
		Config: Config{CollectionInterval: time.Hour, PruneInterval: time.Nanosecond, ProcDir: fixtures.Path("kernel-6.12")},
		Kernel: h.Probes(),
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
	h.Request(bpftest.Request{Session: testSession, Tree: testTree, Command: smb.Write})
	h.Request(bpftest.Request{Session: ended, Tree: 7, Command: smb.Write})

	count := func(md pmetric.Metrics, server, share string) uint64 {
		dps := metricByName(t, md, smb.Table.Keys.Duration).ExponentialHistogram().DataPoints()
		for i := range dps.Len() {
			if attrsAre(dps.At(i).Attributes(), smb.Table.Keys.Command, "SMB2_WRITE", otelconv.AttrServer, server, smb.Table.Keys.Share, share) {
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
		for _, s := range h.Histograms() {
			if s.SessionID == ended {
				t.Errorf("round %d: the ended session's histogram is still in the kernel", round)
			}
		}
	}
}

func TestProgramRunTimeOnlyWhileTheKernelTimesPrograms(t *testing.T) {
	h := bpftest.New(t)
	// Time the programs for this test only (the handle turns it off again when closed);
	// the sysctl the receiver looks at is a stand-in, so the host's stays as it is.
	timing, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		t.Skipf("BPF run-time statistics unavailable: %v", err)
	}
	defer timing.Close()
	sysctl := filepath.Join(t.TempDir(), "bpf_stats_enabled")
	defer func(old string) { bpfStatsEnabled = old }(bpfStatsEnabled)
	bpfStatsEnabled = sysctl

	var c capture
	r, err := New(Settings{Config: Config{CollectionInterval: time.Hour, ProcDir: fixtures.Path("kernel-6.12")}, Kernel: h.Probes()}, c.consumers())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })

	// Five requests completed, two failed: every enter, done and err program run.
	for range 5 {
		h.Request(bpftest.Request{Session: testSession, Tree: testTree, Command: smb.Read, Latency: time.Millisecond})
	}
	for range 2 {
		h.Request(bpftest.Request{Session: testSession, Tree: testTree, Command: smb.Create, Status: 0xc0000034, Rc: -2})
	}
	runs := map[string]int64{
		"aod_cmd_enter": 7, "aod_cmd_done": 5, "aod_cmd_err": 2,
		"aod_reconnect": 0, "aod_connect_done": 0, "aod_connect_err": 0,
	}

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
		if has(md, "aod.bpf.run_time") != (on == "1\n") || has(md, "aod.bpf.run_count") != (on == "1\n") {
			t.Fatalf("bpf_stats_enabled=%q: run time exported %v, run count %v", on, has(md, "aod.bpf.run_time"), has(md, "aod.bpf.run_count"))
		}
		// Skipped runs are counted whether or not the kernel times programs: none here,
		// with nothing else running the programs.
		skipped := metricByName(t, md, "aod.bpf.runs_skipped").Sum().DataPoints()
		if skipped.Len() != len(runs) {
			t.Fatalf("bpf_stats_enabled=%q: %d skipped-run counts, want one per program (%d)", on, skipped.Len(), len(runs))
		}
		for prog := range runs {
			if n := intPoint(t, skipped, otelconv.AttrProgram, prog); n != 0 {
				t.Errorf("%s: %d runs skipped", prog, n)
			}
		}
		if on != "1\n" {
			continue
		}
		counts := metricByName(t, md, "aod.bpf.run_count").Sum().DataPoints()
		times := metricByName(t, md, "aod.bpf.run_time").Sum().DataPoints()
		if counts.Len() != len(runs) || times.Len() != len(runs) {
			t.Fatalf("%d run counts, %d run times; want one per program (%d)", counts.Len(), times.Len(), len(runs))
		}
		for prog, want := range runs {
			if n := intPoint(t, counts, otelconv.AttrProgram, prog); n != want {
				t.Errorf("%s ran %d times, want %d", prog, n, want)
			}
			for i := range times.Len() {
				dp := times.At(i)
				if v, _ := dp.Attributes().Get(otelconv.AttrProgram); v.Str() == prog && (dp.DoubleValue() > 0) != (want > 0) {
					t.Errorf("%s: run time %v s after %d runs", prog, dp.DoubleValue(), want)
				}
			}
		}
	}
}

// TestCollectAtStart: with CollectAtStart the first collection has reached the
// consumer when Start returns, though the next is an hour away.
func TestCollectAtStart(t *testing.T) {
	h := bpftest.New(t)
	var c capture
	r, err := New(Settings{Config: Config{CollectionInterval: time.Hour, CollectAtStart: true, ProcDir: fixtures.Path("kernel-6.12")},
		Kernel: h.Probes()}, c.consumers())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	select {
	case got := <-c.metrics:
		metricByName(t, got[0], "aod.events.emitted")
	default:
		t.Fatal("Start returned before any collection")
	}
}
