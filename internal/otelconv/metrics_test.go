package otelconv

import (
	"fmt"
	"maps"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/cifsproc"
	"github.com/linuxdiag/aod/internal/fixtures"
	"github.com/linuxdiag/aod/internal/latencyhist"
	"github.com/linuxdiag/aod/internal/nfs"
	"github.com/linuxdiag/aod/internal/podattr"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/ringreader"
	"github.com/linuxdiag/aod/internal/smb"
)

var (
	t0       = time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	bootTime = t0.Add(-time.Hour)
)

// findMetric returns the metric of that name, failing the test if there is none.
func findMetric(t *testing.T, md pmetric.Metrics, name string) pmetric.Metric {
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

func hasMetric(md pmetric.Metrics, name string) bool {
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := range ms.Len() {
		if ms.At(i).Name() == name {
			return true
		}
	}
	return false
}

// matches reports whether attrs holds exactly the given key/value pairs.
func matches(attrs pcommon.Map, kv ...string) bool {
	if attrs.Len() != len(kv)/2 {
		return false
	}
	for i := 0; i < len(kv); i += 2 {
		v, ok := attrs.Get(kv[i])
		if !ok || v.Str() != kv[i+1] {
			return false
		}
	}
	return true
}

func numberPoint(t *testing.T, dps pmetric.NumberDataPointSlice, kv ...string) pmetric.NumberDataPoint {
	t.Helper()
	var found pmetric.NumberDataPoint
	n := 0
	for i := range dps.Len() {
		if matches(dps.At(i).Attributes(), kv...) {
			found = dps.At(i)
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d points with attributes %v", n, kv)
	}
	return found
}

// kernelEntry builds the histogram entry the kernel would hold after counting the
// latencies, bucketing them as the BPF programs do.
func kernelEntry(ses uint64, tree uint32, cmd uint16, latencies ...time.Duration) bpf.HistogramSample {
	e := bpf.HistogramSample{Protocol: proto.SMB, SessionID: ses, TreeID: tree, Command: cmd}
	for _, l := range latencies {
		j, zero := latencyhist.BucketOf(uint64(l))
		if zero {
			e.ZeroCount++
		} else {
			e.Buckets[j]++
		}
		e.SumNs += uint64(l)
		e.Count++
	}
	return e
}

var roundTripLatencies = []time.Duration{
	500 * time.Nanosecond, // zero bucket
	953 * time.Nanosecond, // exactly the zero threshold's floor: still the zero bucket
	954 * time.Nanosecond,
	50 * time.Microsecond,
	999_999 * time.Nanosecond,
	time.Millisecond,
	1_189_207_115 * time.Nanosecond, // the floor of 2^(1/4) s: in the bucket below that edge
	1_189_207_116 * time.Nanosecond, // just above it: the next bucket
	105 * time.Millisecond,
	2 * time.Second,
	59 * time.Second,
	5000 * time.Second, // past the top bound: the last, open-ended bucket
}

func TestExponentialHistogramRoundTrip(t *testing.T) {
	m := NewMetrics(testNames, t0, bootTime, "v1")
	m.Update(&Snapshot{Time: t0.Add(time.Minute), Latencies: []bpf.HistogramSample{kernelEntry(0x936c11ff, 0x53dfe4a, 8, roundTripLatencies...)}})
	md := m.Build(Exponential)

	metric := findMetric(t, md, smb.Table.Keys.Duration)
	if metric.Unit() != "s" || metric.Type() != pmetric.MetricTypeExponentialHistogram {
		t.Fatalf("unit %q type %v", metric.Unit(), metric.Type())
	}
	eh := metric.ExponentialHistogram()
	if eh.AggregationTemporality() != pmetric.AggregationTemporalityCumulative || eh.DataPoints().Len() != 1 {
		t.Fatalf("temporality %v, %d points", eh.AggregationTemporality(), eh.DataPoints().Len())
	}
	dp := eh.DataPoints().At(0)
	if !matches(dp.Attributes(), smb.Table.Keys.Command, "SMB2_READ", AttrServer, "127.0.0.1", smb.Table.Keys.Share, "share") {
		t.Errorf("attributes %v", dp.Attributes().AsRaw())
	}
	if dp.StartTimestamp().AsTime() != t0 || dp.Timestamp().AsTime() != t0.Add(time.Minute) {
		t.Errorf("times %v %v", dp.StartTimestamp().AsTime(), dp.Timestamp().AsTime())
	}
	var sumNs uint64
	for _, l := range roundTripLatencies {
		sumNs += uint64(l)
	}
	if dp.Count() != uint64(len(roundTripLatencies)) || dp.Sum() != float64(sumNs)/1e9 {
		t.Errorf("count %d sum %v, want %d and %v", dp.Count(), dp.Sum(), len(roundTripLatencies), float64(sumNs)/1e9)
	}
	if dp.Scale() != 2 {
		t.Errorf("scale %d", dp.Scale())
	}

	// Every latency must sit in an exported bucket whose bounds contain it, computed
	// the way any OTel consumer does: bucket i is (base^i, base^(i+1)], base 2^(1/4).
	counts := map[int32]uint64{}
	pos := dp.Positive()
	for k := range pos.BucketCounts().Len() {
		counts[pos.Offset()+int32(k)] = pos.BucketCounts().At(k)
	}
	var zero uint64
	top := latencyhist.OTelIndex(latencyhist.NumBuckets - 1)
	for _, l := range roundTripLatencies {
		sec := l.Seconds()
		if sec <= dp.ZeroThreshold() {
			zero++
			continue
		}
		idx := int32(math.Ceil(math.Log2(sec)*4)) - 1 // smallest i with sec <= 2^((i+1)/4)
		if idx > top {
			idx = top
		}
		lower, upper := math.Exp2(float64(idx)/4), math.Exp2(float64(idx+1)/4)
		if idx < top && !(sec > lower && sec <= upper) {
			t.Fatalf("%v: index %d bounds (%v, %v]", l, idx, lower, upper)
		}
		if counts[idx] == 0 {
			t.Errorf("%v (%.9f s) not in exported bucket %d (%v, %v]; buckets %v", l, sec, idx, lower, upper, counts)
			continue
		}
		counts[idx]--
	}
	if dp.ZeroCount() != zero || zero != 2 {
		t.Errorf("zero count %d, want %d", dp.ZeroCount(), zero)
	}
	for idx, c := range counts {
		if c != 0 {
			t.Errorf("bucket %d has %d unexplained requests", idx, c)
		}
	}
}

func TestExplicitHistogramRoundTrip(t *testing.T) {
	m := NewMetrics(testNames, t0, bootTime, "v1")
	m.Update(&Snapshot{Time: t0.Add(time.Minute), Latencies: []bpf.HistogramSample{kernelEntry(0x936c11ff, 0x53dfe4a, 5, roundTripLatencies...)}})
	md := m.Build(Explicit)
	metric := findMetric(t, md, smb.Table.Keys.Duration)
	if metric.Type() != pmetric.MetricTypeHistogram {
		t.Fatalf("type %v", metric.Type())
	}
	dp := metric.Histogram().DataPoints().At(0)
	bounds := dp.ExplicitBounds().AsRaw()
	if len(bounds) < 20 || bounds[0] > 100e-6 || bounds[len(bounds)-1] < 60 {
		t.Fatalf("bounds %v: want >= 20 spanning about 50 µs to 60 s", bounds)
	}
	for _, b := range bounds {
		// Each bound is a kernel edge 2^(i/4): its log2 times four is an integer.
		if q := math.Log2(b) * 4; q != math.Trunc(q) {
			t.Errorf("bound %v is not a kernel bucket edge", b)
		}
	}
	counts := dp.BucketCounts().AsRaw()
	if len(counts) != len(bounds)+1 {
		t.Fatalf("%d counts for %d bounds", len(counts), len(bounds))
	}
	want := make([]uint64, len(counts))
	for _, l := range roundTripLatencies {
		i := 0
		for i < len(bounds) && l.Seconds() > bounds[i] {
			i++
		}
		want[i]++
	}
	for i := range want {
		if counts[i] != want[i] {
			t.Errorf("bucket %d (le %v): %d, want %d", i, append(bounds, math.Inf(1))[i], counts[i], want[i])
		}
	}
	if dp.Count() != uint64(len(roundTripLatencies)) {
		t.Errorf("count %d", dp.Count())
	}
	if !matches(dp.Attributes(), smb.Table.Keys.Command, "SMB2_CREATE", AttrServer, "127.0.0.1", smb.Table.Keys.Share, "share") {
		t.Errorf("attributes %v", dp.Attributes().AsRaw())
	}
}

func TestFailedRequestDurationsCarryErrorType(t *testing.T) {
	names := mapNames{{1, 10}: {Server: "srv", Share: "a"}, {2, 20}: {Server: "srv", Share: "a"}}
	failed := func(ses uint64, tree uint32, status uint32, latencies ...time.Duration) bpf.HistogramSample {
		e := kernelEntry(ses, tree, 8, latencies...)
		e.Status = status
		return e
	}
	ms := time.Millisecond
	entries := []bpf.HistogramSample{
		kernelEntry(1, 10, 8, ms, 2*ms),
		failed(1, 10, 0xc0000011, 5*ms, 300*ms),
		failed(2, 20, 0xc0000011, 40*time.Second), // another session on the share: same series
		failed(1, 10, 0xc0000034, 17*ms),
	}
	for _, form := range []HistogramForm{Exponential, Explicit} {
		m := NewMetrics(names, t0, bootTime, "v1")
		m.Update(&Snapshot{Time: t0.Add(time.Minute), Latencies: entries})
		metric := findMetric(t, m.Build(form), smb.Table.Keys.Duration)
		for _, c := range []struct {
			errorType string // "": the successful requests, without error.type
			latencies []time.Duration
		}{
			{"", []time.Duration{ms, 2 * ms}},
			{"STATUS_END_OF_FILE", []time.Duration{5 * ms, 300 * ms, 40 * time.Second}},
			{"STATUS_OBJECT_NAME_NOT_FOUND", []time.Duration{17 * ms}},
		} {
			kv := []string{smb.Table.Keys.Command, "SMB2_READ", AttrServer, "srv", smb.Table.Keys.Share, "a"}
			if c.errorType != "" {
				kv = append(kv, AttrErrorType, c.errorType)
			}
			var sumNs uint64
			for _, l := range c.latencies {
				sumNs += uint64(l)
			}
			// Every known latency is in the exported bucket whose bounds hold it.
			want := map[int32]uint64{}
			for _, l := range c.latencies {
				want[int32(math.Ceil(math.Log2(l.Seconds())*4))-1]++
			}
			n := 0
			switch form {
			case Exponential:
				dps := metric.ExponentialHistogram().DataPoints()
				for i := range dps.Len() {
					dp := dps.At(i)
					if !matches(dp.Attributes(), kv...) {
						continue
					}
					n++
					got := map[int32]uint64{}
					for k, v := range dp.Positive().BucketCounts().AsRaw() {
						if v != 0 {
							got[dp.Positive().Offset()+int32(k)] = v
						}
					}
					if dp.Count() != uint64(len(c.latencies)) || dp.Sum() != float64(sumNs)/1e9 || !maps.Equal(got, want) {
						t.Errorf("%q: count %d sum %v buckets %v; want %d, %v, %v", c.errorType, dp.Count(), dp.Sum(), got, len(c.latencies), float64(sumNs)/1e9, want)
					}
				}
			case Explicit:
				dps := metric.Histogram().DataPoints()
				for i := range dps.Len() {
					if dp := dps.At(i); matches(dp.Attributes(), kv...) {
						n++
						if dp.Count() != uint64(len(c.latencies)) || dp.Sum() != float64(sumNs)/1e9 {
							t.Errorf("explicit %q: count %d sum %v", c.errorType, dp.Count(), dp.Sum())
						}
					}
				}
			}
			if n != 1 {
				t.Errorf("form %d: %d points with %v, want 1", form, n, kv)
			}
		}
	}
}

func TestRequestMetricsAccumulate(t *testing.T) {
	names := mapNames{
		{1, 10}: {Server: "srv", Share: "a"},
		{2, 20}: {Server: "srv", Share: "a"}, // a second user's session on the same share
		{1, 11}: {Server: "srv", Share: "b"},
	}
	m := NewMetrics(names, t0, bootTime, "v1")
	ms := time.Millisecond

	snap := func(at time.Duration, lat []bpf.HistogramSample, errs []bpf.ErrorSample) pmetric.Metrics {
		m.Update(&Snapshot{Time: t0.Add(at), Latencies: lat, Errors: errs})
		return m.Build(Exponential)
	}
	durationOf := func(md pmetric.Metrics, share string) pmetric.ExponentialHistogramDataPoint {
		dps := findMetric(t, md, smb.Table.Keys.Duration).ExponentialHistogram().DataPoints()
		for i := range dps.Len() {
			if matches(dps.At(i).Attributes(), smb.Table.Keys.Command, "SMB2_READ", AttrServer, "srv", smb.Table.Keys.Share, share) {
				return dps.At(i)
			}
		}
		t.Fatalf("no duration point for share %s", share)
		return pmetric.ExponentialHistogramDataPoint{}
	}

	md := snap(time.Minute,
		[]bpf.HistogramSample{kernelEntry(1, 10, 8, ms, ms), kernelEntry(2, 20, 8, 3*ms), kernelEntry(1, 11, 8, ms)},
		[]bpf.ErrorSample{{Protocol: proto.SMB, SessionID: 1, TreeID: 10, Command: 5, Status: 0xc0000034, Count: 4}, {Protocol: proto.SMB, SessionID: 2, TreeID: 20, Command: 5, Status: 0xc0000034, Count: 1}})
	if a := durationOf(md, "a"); a.Count() != 3 || a.Sum() != 0.005 {
		t.Fatalf("share a: count %d sum %v, want both sessions' 3 and 0.005", a.Count(), a.Sum())
	}
	if b := durationOf(md, "b"); b.Count() != 1 {
		t.Fatalf("share b count %d", b.Count())
	}
	errs := findMetric(t, md, smb.Table.Keys.Errors)
	if !errs.Sum().IsMonotonic() || errs.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
		t.Fatal("errors not a cumulative monotonic sum")
	}
	dp := numberPoint(t, errs.Sum().DataPoints(), smb.Table.Keys.Command, "SMB2_CREATE", AttrErrorType, "STATUS_OBJECT_NAME_NOT_FOUND", AttrServer, "srv", smb.Table.Keys.Share, "a")
	if dp.IntValue() != 5 || dp.StartTimestamp().AsTime() != t0 {
		t.Fatalf("errors %d start %v", dp.IntValue(), dp.StartTimestamp().AsTime())
	}

	// Session 2's entry is deleted and re-created in the kernel with one new request:
	// the series keeps growing and keeps its start.
	md = snap(2*time.Minute,
		[]bpf.HistogramSample{kernelEntry(1, 10, 8, ms, ms, ms), kernelEntry(2, 20, 8, 2*ms), kernelEntry(1, 11, 8, ms)},
		[]bpf.ErrorSample{{Protocol: proto.SMB, SessionID: 1, TreeID: 10, Command: 5, Status: 0xc0000034, Count: 4}})
	if a := durationOf(md, "a"); a.Count() != 5 || math.Abs(a.Sum()-0.008) > 1e-15 || a.StartTimestamp().AsTime() != t0 {
		t.Fatalf("share a after a restart: count %d sum %v start %v, want 5, 0.008, %v", a.Count(), a.Sum(), a.StartTimestamp().AsTime(), t0)
	}
	// The error entry of session 2 vanished: its past failures stay counted.
	dp = numberPoint(t, findMetric(t, md, smb.Table.Keys.Errors).Sum().DataPoints(), smb.Table.Keys.Command, "SMB2_CREATE", AttrErrorType, "STATUS_OBJECT_NAME_NOT_FOUND", AttrServer, "srv", smb.Table.Keys.Share, "a")
	if dp.IntValue() != 5 {
		t.Fatalf("errors after an entry vanished: %d", dp.IntValue())
	}
}

func TestUnresolvedSharesStillCount(t *testing.T) {
	m := NewMetrics(mapNames{}, t0, bootTime, "v1")
	m.Update(&Snapshot{Time: t0, Latencies: []bpf.HistogramSample{kernelEntry(9, 9, 0, time.Millisecond)}})
	dp := findMetric(t, m.Build(Exponential), smb.Table.Keys.Duration).ExponentialHistogram().DataPoints().At(0)
	if !matches(dp.Attributes(), smb.Table.Keys.Command, "SMB2_NEGOTIATE", AttrServer, "", smb.Table.Keys.Share, "") || dp.Count() != 1 {
		t.Fatalf("attributes %v count %d", dp.Attributes().AsRaw(), dp.Count())
	}
}

// readStats parses a Stats file of the fixture tree, named by its slash-separated
// path in it.
func readStats(t testing.TB, name string) *cifsproc.Stats {
	t.Helper()
	b, err := os.ReadFile(fixtures.Path(name))
	if err != nil {
		t.Fatal(err)
	}
	st, err := cifsproc.ParseStats(b)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestCifsStatsMetrics(t *testing.T) {
	m := NewMetrics(testNames, t0, bootTime, "v1")
	m.Update(&Snapshot{Time: t0, Stats: readStats(t, "kernel-6.12/Stats")})
	md := m.Build(Exponential)

	since := time.Date(2026, 11, 26, 2, 11, 33, 0, time.UTC)
	check := func(metric string, want int64, start time.Time, kv ...string) {
		t.Helper()
		mt := findMetric(t, md, metric)
		var dps pmetric.NumberDataPointSlice
		switch mt.Type() {
		case pmetric.MetricTypeSum:
			if !mt.Sum().IsMonotonic() || mt.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
				t.Errorf("%s: not a cumulative monotonic sum", metric)
			}
			dps = mt.Sum().DataPoints()
		case pmetric.MetricTypeGauge:
			dps = mt.Gauge().DataPoints()
		}
		dp := numberPoint(t, dps, kv...)
		if dp.IntValue() != want {
			t.Errorf("%s%v = %d, want %d", metric, kv, dp.IntValue(), want)
		}
		if dp.StartTimestamp().AsTime() != start && !(start.IsZero() && dp.StartTimestamp() == 0) {
			t.Errorf("%s%v start %v, want %v", metric, kv, dp.StartTimestamp().AsTime(), start)
		}
	}
	var none time.Time
	check("cifs.sessions", 1, none)
	check("cifs.shares", 2, none)
	check("cifs.buffers", 1, none, AttrBufferSize, "large")
	check("cifs.buffer.allocations", 576, bootTime, AttrBufferSize, "small")
	check("cifs.reconnects", 0, bootTime, AttrReconnect, "session")
	check("cifs.vfs.operations", 199, bootTime)
	check("cifs.vfs.operations.max_active", 4, none)
	check("cifs.server.requests.max_in_flight", 6, none, AttrServer, "127.0.0.1")
	check("cifs.server.commands", 58, bootTime, AttrServer, "127.0.0.1", smb.Table.Keys.Command, "SMB2_CREATE")
	check("cifs.share.requests", 310, since, AttrServer, "127.0.0.1", smb.Table.Keys.Share, "share")
	check("cifs.share.io", 4194328, since, AttrServer, "127.0.0.1", smb.Table.Keys.Share, "share", AttrDirection, "read")
	check("cifs.share.io", 4194311, since, AttrServer, "127.0.0.1", smb.Table.Keys.Share, "share", AttrDirection, "write")
	check("cifs.share.open_files", 1, none, AttrServer, "127.0.0.1", smb.Table.Keys.Share, "share", AttrOpenScope, "server")
	check("cifs.share.commands", 69, since, AttrServer, "127.0.0.1", smb.Table.Keys.Share, "share", smb.Table.Keys.Command, "SMB2_READ")
	check("cifs.share.command.failures", 0, since, AttrServer, "127.0.0.1", smb.Table.Keys.Share, "share", smb.Table.Keys.Command, "SMB2_OPLOCK_BREAK")
	check("cifs.share.disconnected", 0, none, AttrServer, "127.0.0.1", smb.Table.Keys.Share, "share")

	// Jiffies become seconds: 346 jiffies at 250 Hz.
	dp := numberPoint(t, findMetric(t, md, "cifs.server.command.time").Sum().DataPoints(), AttrServer, "127.0.0.1", smb.Table.Keys.Command, "SMB2_CLOSE")
	if dp.DoubleValue() != 346.0/250 {
		t.Errorf("close time %v", dp.DoubleValue())
	}
	dp = numberPoint(t, findMetric(t, md, "cifs.server.command.slowest").Gauge().DataPoints(), AttrServer, "127.0.0.1", smb.Table.Keys.Command, "SMB2_CLOSE")
	if dp.DoubleValue() != 53.0/250 {
		t.Errorf("slowest close %v", dp.DoubleValue())
	}
	// Commands never sent have no fastest/slowest to speak of.
	fast := findMetric(t, md, "cifs.server.command.fastest").Gauge().DataPoints()
	for i := range fast.Len() {
		if v, _ := fast.At(i).Attributes().Get(smb.Table.Keys.Command); v.Str() == "SMB2_LOCK" {
			t.Error("fastest reported for a command with no responses")
		}
	}
}

func TestCifsStatsResetsAndMerges(t *testing.T) {
	m := NewMetrics(testNames, t0, bootTime, "v1")
	st := readStats(t, "proc/cifs-multi/fs/cifs/Stats")
	m.Update(&Snapshot{Time: t0, Stats: st})
	md := m.Build(Exponential)

	// Server blocks and shares are exported once per name.
	dps := findMetric(t, md, "cifs.server.commands").Sum().DataPoints()
	if dp := numberPoint(t, dps, AttrServer, "fs1.example.com", smb.Table.Keys.Command, "SMB2_READ"); dp.IntValue() != 5000 {
		t.Errorf("fs1 reads %d", dp.IntValue())
	}
	if dp := numberPoint(t, findMetric(t, md, "cifs.share.disconnected").Gauge().DataPoints(), AttrServer, "fs1.example.com", smb.Table.Keys.Share, "home"); dp.IntValue() != 1 {
		t.Errorf("home disconnected = %d", dp.IntValue())
	}
	if dp := numberPoint(t, findMetric(t, md, "cifs.server.slow_responses").Sum().DataPoints(), AttrServer, "fs1.example.com", smb.Table.Keys.Command, "SMB2_READ"); dp.IntValue() != 3 {
		t.Errorf("slow responses %d", dp.IntValue())
	}

	// Someone writes to /proc/fs/cifs/Stats: counters without a kernel "since" drop,
	// and their start moves to the previous snapshot; the others keep theirs.
	st2 := readStats(t, "proc/cifs-multi/fs/cifs/Stats")
	st2.VFSOperations = 10
	m.Update(&Snapshot{Time: t0.Add(time.Minute), Stats: st2})
	md = m.Build(Exponential)
	if dp := numberPoint(t, findMetric(t, md, "cifs.vfs.operations").Sum().DataPoints()); dp.IntValue() != 10 || dp.StartTimestamp().AsTime() != t0 {
		t.Errorf("after reset: %d from %v, want 10 from %v", dp.IntValue(), dp.StartTimestamp().AsTime(), t0)
	}
	if dp := numberPoint(t, findMetric(t, md, "cifs.reconnects").Sum().DataPoints(), AttrReconnect, "share"); dp.StartTimestamp().AsTime() != bootTime {
		t.Errorf("untouched counter's start moved to %v", dp.StartTimestamp().AsTime())
	}

	// A second tree connection to the same share (multiuser) adds up into one series.
	st3 := readStats(t, "proc/cifs-multi/fs/cifs/Stats")
	dup := st3.Servers[0].Shares[0]
	dup.SMBs, dup.Since = 1000, time.Time{}
	st3.Servers[0].Shares = append(st3.Servers[0].Shares, dup)
	m.Update(&Snapshot{Time: t0.Add(2 * time.Minute), Stats: st3})
	md = m.Build(Exponential)
	if dp := numberPoint(t, findMetric(t, md, "cifs.share.requests").Sum().DataPoints(), AttrServer, "fs1.example.com", smb.Table.Keys.Share, "projects"); dp.IntValue() != 10000 {
		t.Errorf("merged share requests %d", dp.IntValue())
	}
	if dp := numberPoint(t, findMetric(t, md, "cifs.share.commands").Sum().DataPoints(), AttrServer, "fs1.example.com", smb.Table.Keys.Share, "projects", smb.Table.Keys.Command, "SMB2_CREATE"); dp.IntValue() != 1600 {
		t.Errorf("merged creates %d", dp.IntValue())
	}
	// Building twice (once per histogram form) does not move anything.
	again := m.Build(Explicit)
	if dp := numberPoint(t, findMetric(t, again, "cifs.vfs.operations").Sum().DataPoints()); dp.StartTimestamp().AsTime() != t0 {
		t.Errorf("second build moved the start to %v", dp.StartTimestamp().AsTime())
	}
	// The parsed snapshot is left as it was.
	if len(st3.Servers[0].Shares[0].CommandCounters) != 5 || st3.Servers[0].Shares[0].SMBs != 9000 {
		t.Errorf("Build modified the snapshot: %+v", st3.Servers[0].Shares[0])
	}
}

func TestSelfMetrics(t *testing.T) {
	m := NewMetrics(testNames, t0, bootTime, "v1")
	m.Update(&Snapshot{
		Time:     t0.Add(time.Minute),
		Kernel:   bpf.Counters{EventsEmitted: 100, RingReserveFailures: 3, Orphans: 2, DoubleCompletions: 1, EventsFiltered: 5000, StartCollisions: 4, HistogramMapFull: 6, ErrorMapFull: 7, AgedOut: 9, ChainReleased: 11},
		Reader:   ringreader.Stats{Read: 97, DecodeErrors: 1, DroppedQueueFull: 8},
		InFlight: 12, RingUsed: 1 << 20, RingSize: 8 << 20,
		Programs:        []ProgramStats{{Name: "aod_cmd_done", RunTime: 1500 * time.Millisecond, RunCount: 42, Skipped: 3}, {Name: "aod_rpc_stats", Skipped: 7}},
		ProgramsTimed:   true,
		DebugDataErrors: 2, StatsErrors: 1,
		Hooks: []bpf.HookStatus{
			{Protocol: "smb", Hook: "smb3_cmd_enter", Attached: true},
			{Protocol: "smb", Hook: "smb3_connect_done", Reason: "not in this kernel"},
			{Protocol: "nfs", Hook: "rpc_stats_latency", Reason: "programs not loaded"},
		},
	})
	md := m.Build(Exponential)
	for _, c := range []struct {
		metric string
		want   int64
		kv     []string
	}{
		{"aod.events.emitted", 100, nil},
		{"aod.events.read", 97, nil},
		{"aod.events.dropped", 3, []string{AttrDropReason, DropRingFull}},
		{"aod.events.dropped", 8, []string{AttrDropReason, DropQueueFull}},
		{"aod.events.dropped", 2, []string{AttrDropReason, DropOrphaned}},
		{"aod.events.dropped", 4, []string{AttrDropReason, DropStartCollision}},
		{"aod.events.dropped", 6, []string{AttrDropReason, DropHistogramFull}},
		{"aod.events.dropped", 7, []string{AttrDropReason, DropErrorMapFull}},
		{"aod.events.dropped", 9, []string{AttrDropReason, DropAgedOut}},
		{"aod.events.dropped", 10, []string{AttrDropReason, DropProbeSkipped}},
		{"aod.events.decode_errors", 1, nil},
		{"aod.requests.filtered", 5000, nil},
		{"aod.requests.duplicate_completions", 1, nil},
		{"aod.requests.chain_released", 11, nil},
		{"aod.bpf.run_count", 42, []string{AttrProgram, "aod_cmd_done"}},
		{"aod.bpf.runs_skipped", 3, []string{AttrProgram, "aod_cmd_done"}},
		{"aod.bpf.runs_skipped", 7, []string{AttrProgram, "aod_rpc_stats"}},
		{"aod.cifs.proc.errors", 2, []string{AttrProcFile, "DebugData"}},
		{"aod.cifs.proc.errors", 1, []string{AttrProcFile, "Stats"}},
	} {
		dp := numberPoint(t, findMetric(t, md, c.metric).Sum().DataPoints(), c.kv...)
		if dp.IntValue() != c.want || dp.StartTimestamp().AsTime() != t0 {
			t.Errorf("%s%v = %d from %v, want %d from %v", c.metric, c.kv, dp.IntValue(), dp.StartTimestamp().AsTime(), c.want, t0)
		}
	}
	if dp := numberPoint(t, findMetric(t, md, "aod.requests.in_flight").Gauge().DataPoints()); dp.IntValue() != 12 {
		t.Errorf("in flight %d", dp.IntValue())
	}
	for _, h := range []struct {
		protocol, hook string
		want           int64
	}{{"smb", "smb3_cmd_enter", 1}, {"smb", "smb3_connect_done", 0}, {"nfs", "rpc_stats_latency", 0}} {
		if dp := numberPoint(t, findMetric(t, md, "aod.bpf.hook.attached").Gauge().DataPoints(), AttrProtocol, h.protocol, AttrHook, h.hook); dp.IntValue() != h.want {
			t.Errorf("aod.bpf.hook.attached %s %s = %d, want %d", h.protocol, h.hook, dp.IntValue(), h.want)
		}
	}
	if dp := numberPoint(t, findMetric(t, md, "aod.ring.fill").Gauge().DataPoints()); dp.DoubleValue() != 0.125 {
		t.Errorf("ring fill %v", dp.DoubleValue())
	}
	if dp := numberPoint(t, findMetric(t, md, "aod.bpf.run_time").Sum().DataPoints(), AttrProgram, "aod_cmd_done"); dp.DoubleValue() != 1.5 {
		t.Errorf("run time %v", dp.DoubleValue())
	}

	// Without bpf stats enabled, no run-time metrics but the skipped runs, always counted.
	m.Update(&Snapshot{Time: t0.Add(2 * time.Minute), Programs: []ProgramStats{{Name: "aod_cmd_done", Skipped: 4}}})
	md = m.Build(Exponential)
	if hasMetric(md, "aod.bpf.run_time") || hasMetric(md, "aod.bpf.run_count") {
		t.Error("run time or count exported while the kernel did not time the programs")
	}
	if dp := numberPoint(t, findMetric(t, md, "aod.bpf.runs_skipped").Sum().DataPoints(), AttrProgram, "aod_cmd_done"); dp.IntValue() != 4 {
		t.Errorf("aod_cmd_done skipped %d runs, want 4", dp.IntValue())
	}
	// Without programs, no program metrics; without requests, no request metrics.
	m.Update(&Snapshot{Time: t0.Add(3 * time.Minute)})
	md = m.Build(Exponential)
	for _, name := range []string{"aod.bpf.run_time", "aod.bpf.run_count", "aod.bpf.runs_skipped", "aod.bpf.hook.attached", smb.Table.Keys.Duration, smb.Table.Keys.Errors, "cifs.sessions"} {
		if hasMetric(md, name) {
			t.Errorf("%s exported without data", name)
		}
	}
}

// BenchmarkMetricsSnapshot measures one snapshot of 20 commands on 10 shares, each
// request entry holding requests in 8 buckets: Update plus Build in one form.
func BenchmarkMetricsSnapshot(b *testing.B) {
	names := mapNames{}
	var lat []bpf.HistogramSample
	var errs []bpf.ErrorSample
	for share := range 10 {
		names[[2]uint64{1, uint64(share)}] = cifsproc.Name{Server: "fs1.example.com", Share: "share" + string(rune('a'+share))}
		for cmd := range 20 {
			e := kernelEntry(1, uint32(share), uint16(cmd))
			for j := 60; j < 68; j++ {
				e.Buckets[j] = uint64(j)
			}
			lat = append(lat, e)
			errs = append(errs, bpf.ErrorSample{Protocol: proto.SMB, SessionID: 1, TreeID: uint32(share), Command: uint16(cmd), Status: 0xc0000011, Count: 1})
		}
	}
	st := readStats(b, "proc/cifs-multi/fs/cifs/Stats")
	for _, form := range []struct {
		name string
		form HistogramForm
	}{{"exponential", Exponential}, {"explicit", Explicit}} {
		b.Run(form.name, func(b *testing.B) {
			m := NewMetrics(names, t0, bootTime, "v1")
			b.ReportAllocs()
			for i := range b.N {
				for k := range lat {
					lat[k].Buckets[64]++ // every entry moves, as under load
					errs[k].Count++
				}
				m.Update(&Snapshot{Time: t0.Add(time.Duration(i) * time.Second), Latencies: lat, Errors: errs, Stats: st, RingSize: 1})
				_ = m.Build(form.form)
			}
		})
	}
}

func TestForgetSessionsAfterPrune(t *testing.T) {
	names := mapNames{{1, 10}: {Server: "srv", Share: "a"}}
	m := NewMetrics(names, t0, bootTime, "v1")
	ms := time.Millisecond
	// An NFS RPC client with the same id, whose entry the SMB prune does not touch.
	rpc := kernelEntry(1, 0, 3, ms, ms)
	rpc.Protocol = proto.NFS
	m.Update(&Snapshot{Time: t0, Latencies: []bpf.HistogramSample{kernelEntry(1, 10, 8, ms, ms, ms), rpc}})
	// The session's entries were pruned from the kernel, and the same key came back with
	// four requests before the next read: all four are new.
	m.ForgetSessions(proto.SMB, func(id uint64) bool { return id != 1 })
	m.Update(&Snapshot{Time: t0.Add(time.Minute), Latencies: []bpf.HistogramSample{kernelEntry(1, 10, 8, ms, ms, ms, ms), rpc}})
	md := m.Build(Exponential)
	if dp := findMetric(t, md, smb.Table.Keys.Duration).ExponentialHistogram().DataPoints().At(0); dp.Count() != 7 {
		t.Fatalf("SMB count %d, want 3 + 4", dp.Count())
	}
	if dp := findMetric(t, md, nfs.Table.Keys.Duration).ExponentialHistogram().DataPoints().At(0); dp.Count() != 2 {
		t.Fatalf("NFS count %d, want the same 2 RPCs read twice", dp.Count())
	}
}

// An NFS series also names its RPC as OpenTelemetry's RPC conventions do (and as the
// mountstats metrics do, so the two join); an SMB series does not.
func TestNFSSeriesNameTheirRPC(t *testing.T) {
	ms := time.Millisecond
	rpc := kernelEntry(1, 0, nfs.V3Lookup, ms)
	rpc.Protocol = proto.NFS
	m := NewMetrics(mapNames{}, t0, bootTime, "v1")
	m.Update(&Snapshot{Time: t0, Latencies: []bpf.HistogramSample{rpc, kernelEntry(1, 10, 8, ms)}})
	md := m.Build(Exponential)
	got := findMetric(t, md, nfs.Table.Keys.Duration).ExponentialHistogram().DataPoints().At(0).Attributes().AsRaw()
	for k, v := range map[string]any{AttrRPCSystem: "onc_rpc", AttrONCProgram: "nfs", AttrONCVersion: int64(3),
		AttrONCProcedure: "LOOKUP", nfs.Table.Keys.Command: "NFS3PROC_LOOKUP"} {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v (attributes %v)", k, got[k], v, got)
		}
	}
	if smbAttrs := findMetric(t, md, smb.Table.Keys.Duration).ExponentialHistogram().DataPoints().At(0).Attributes().AsRaw(); smbAttrs[AttrRPCSystem] != nil {
		t.Errorf("an SMB series has %s: %v", AttrRPCSystem, smbAttrs)
	}
}

func TestCardinalityLimitFoldsIntoOverflow(t *testing.T) {
	names := mapNames{}
	for tree := range uint32(5) {
		names[[2]uint64{1, uint64(tree)}] = cifsproc.Name{Server: "srv", Share: fmt.Sprint("s", tree)}
	}
	m := NewMetrics(names, t0, bootTime, "v1")
	m.SetCardinalityLimit(3)
	ms := time.Millisecond
	var lat []bpf.HistogramSample
	var errs []bpf.ErrorSample
	for tree := range uint32(5) {
		lat = append(lat, kernelEntry(1, tree, 8, ms))
		errs = append(errs, bpf.ErrorSample{Protocol: proto.SMB, SessionID: 1, TreeID: tree, Command: 5, Status: 0xc0000034, Count: 2})
	}
	m.Update(&Snapshot{Time: t0.Add(time.Minute), Latencies: lat, Errors: errs})
	// A folded series keeps adding to the overflow series, a kept one to its own.
	lat[0], lat[4] = kernelEntry(1, 0, 8, ms, ms), kernelEntry(1, 4, 8, ms, ms)
	m.Update(&Snapshot{Time: t0.Add(2 * time.Minute), Latencies: lat, Errors: errs})
	md := m.Build(Exponential)

	dps := findMetric(t, md, smb.Table.Keys.Duration).ExponentialHistogram().DataPoints()
	if dps.Len() != 3 {
		t.Fatalf("%d duration series, want the limit, 3", dps.Len())
	}
	counts := map[string]uint64{}
	for i := range dps.Len() {
		a := dps.At(i).Attributes()
		if v, ok := a.Get(AttrOverflow); ok {
			if !v.Bool() || a.Len() != 1 {
				t.Fatalf("overflow series attributes %v", a.AsRaw())
			}
			counts["overflow"] = dps.At(i).Count()
			continue
		}
		share, _ := a.Get(smb.Table.Keys.Share)
		counts[share.Str()] = dps.At(i).Count()
	}
	if want := map[string]uint64{"s0": 2, "s1": 1, "overflow": 4}; !maps.Equal(counts, want) {
		t.Fatalf("duration counts %v, want %v", counts, want)
	}
	edps := findMetric(t, md, smb.Table.Keys.Errors).Sum().DataPoints()
	if edps.Len() != 3 || edps.At(2).IntValue() != 6 || !isOverflow(edps.At(2).Attributes()) {
		t.Fatalf("error series: %d, last %v = %d; want 3, the overflow with 3 series' 6 failures", edps.Len(), edps.At(2).Attributes().AsRaw(), edps.At(2).IntValue())
	}
	folded := findMetric(t, md, "aod.metric.overflow.series").Gauge().DataPoints()
	for _, metric := range []string{smb.Table.Keys.Duration, smb.Table.Keys.Errors} {
		if n := numberPoint(t, folded, AttrMetric, metric).IntValue(); n != 3 {
			t.Errorf("%s: %d series folded, want 3", metric, n)
		}
	}
}

func TestNoOverflowBelowTheLimit(t *testing.T) {
	m := NewMetrics(mapNames{}, t0, bootTime, "v1")
	m.SetCardinalityLimit(2)
	m.Update(&Snapshot{Time: t0, Latencies: []bpf.HistogramSample{kernelEntry(9, 9, 0, time.Millisecond)}})
	md := m.Build(Exponential)
	if dp := findMetric(t, md, smb.Table.Keys.Duration).ExponentialHistogram().DataPoints().At(0); isOverflow(dp.Attributes()) {
		t.Fatal("the only series was folded")
	}
	if hasMetric(md, "aod.metric.overflow.series") {
		t.Fatal("overflow counted with nothing folded")
	}
}

func isOverflow(attrs pcommon.Map) bool {
	v, ok := attrs.Get(AttrOverflow)
	return ok && v.Bool()
}

type fixedWorkloads map[uint64]podattr.Workload

func (f fixedWorkloads) Lookup(id uint64) (podattr.Workload, bool) {
	w, ok := f[id]
	return w, ok
}

// Per-cgroup kernel entries make per-workload series only with SetWorkloads: the pod
// and container, never the cgroup path; an entry without a cgroup, or one no longer
// named, stays in the share's series.
func TestWorkloadSeries(t *testing.T) {
	names := mapNames{{1, 10}: {Server: "srv", Share: "a"}}
	work := fixedWorkloads{
		7: {Cgroup: "/kubepods/x", PodUID: "u1", Namespace: "shop", PodName: "web", ContainerName: "app", ContainerID: strings.Repeat("a", 64)},
		8: {Cgroup: "/system.slice/backup.service", Unit: "backup.service"},
	}
	entries := func() []bpf.HistogramSample {
		e0, e7, e8, e9 := kernelEntry(1, 10, 8, time.Millisecond), kernelEntry(1, 10, 8, time.Millisecond, time.Millisecond),
			kernelEntry(1, 10, 8, time.Millisecond), kernelEntry(1, 10, 8, time.Millisecond)
		e7.CgroupID, e8.CgroupID, e9.CgroupID = 7, 8, 9
		return []bpf.HistogramSample{e0, e7, e8, e9}
	}
	count := func(m *Metrics) map[string]uint64 {
		m.Update(&Snapshot{Time: t0, Latencies: entries(),
			Errors: []bpf.ErrorSample{{Protocol: proto.SMB, SessionID: 1, TreeID: 10, Command: 5, Status: 0xc0000034, CgroupID: 7, Count: 3}}})
		md := m.Build(Exponential)
		got := map[string]uint64{}
		dps := findMetric(t, md, smb.Table.Keys.Duration).ExponentialHistogram().DataPoints()
		for i := range dps.Len() {
			a := dps.At(i).Attributes()
			if _, ok := a.Get(podattr.KeyCgroup); ok {
				t.Errorf("a series carries the cgroup path: %v", a.AsRaw())
			}
			pod, _ := a.Get(podattr.KeyPodName)
			unit, _ := a.Get(podattr.KeyUnit)
			got[pod.Str()+unit.Str()] += dps.At(i).Count()
		}
		errs := findMetric(t, md, smb.Table.Keys.Errors).Sum().DataPoints()
		if errs.Len() != 1 {
			t.Fatalf("%d error series", errs.Len())
		}
		if c, _ := errs.At(0).Attributes().Get(podattr.KeyContainerName); (m.work != nil) != (c.Str() == "app") {
			t.Errorf("error series %v", errs.At(0).Attributes().AsRaw())
		}
		return got
	}
	if got := count(NewMetrics(names, t0, bootTime, "v1")); !maps.Equal(got, map[string]uint64{"": 5}) {
		t.Errorf("without SetWorkloads: %v, want one series of 5", got)
	}
	m := NewMetrics(names, t0, bootTime, "v1")
	m.SetWorkloads(work)
	if got := count(m); !maps.Equal(got, map[string]uint64{"": 2, "web": 2, "backup.service": 1}) {
		t.Errorf("with SetWorkloads: %v, want the share's 2 (no cgroup, unknown cgroup), the pod's 2, the unit's 1", got)
	}
}
