package otelconv

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/linuxdiag/aod/internal/fixtures"
	"github.com/linuxdiag/aod/internal/nfs"
	"github.com/linuxdiag/aod/internal/nfsproc"
)

func readMountStats(t testing.TB, name string) []nfsproc.Mount {
	t.Helper()
	f, err := os.Open(fixtures.Path(name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ms, err := nfsproc.Parse(name, f)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// nfsPoints returns the points of metric whose attributes include every kv pair
// (values compared as strings, so onc_rpc.version 4 matches "4").
func nfsPoints(t *testing.T, md pmetric.Metrics, metric string, kv ...string) []pmetric.NumberDataPoint {
	t.Helper()
	mt := findMetric(t, md, metric)
	if mt.Type() != pmetric.MetricTypeSum || !mt.Sum().IsMonotonic() || mt.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
		t.Fatalf("%s is not a cumulative monotonic sum", metric)
	}
	var out []pmetric.NumberDataPoint
	dps := mt.Sum().DataPoints()
next:
	for i := range dps.Len() {
		for j := 0; j+1 < len(kv); j += 2 {
			v, ok := dps.At(i).Attributes().Get(kv[j])
			if !ok || v.AsString() != kv[j+1] {
				continue next
			}
		}
		out = append(out, dps.At(i))
	}
	return out
}

func nfsPoint(t *testing.T, md pmetric.Metrics, metric string, kv ...string) pmetric.NumberDataPoint {
	t.Helper()
	ps := nfsPoints(t, md, metric, kv...)
	if len(ps) != 1 {
		t.Fatalf("%s: %d points with %v", metric, len(ps), kv)
	}
	return ps[0]
}

func TestExportKeyIsTheNFSTables(t *testing.T) {
	if AttrNFSExport != nfs.Table.Keys.Share {
		t.Errorf("AttrNFSExport = %q, the NFS request metrics key the export %q", AttrNFSExport, nfs.Table.Keys.Share)
	}
}

func TestMountStatsMetrics(t *testing.T) {
	m := NewMetrics(testNames, t0, bootTime, "v1")
	m.Update(&Snapshot{Time: t0, NFSMounts: readMountStats(t, "kernel-6.1/nfs/mountstats.after"), MountStatsErrors: 2})
	md := m.Build(Exponential)

	n4 := []string{AttrServer, "127.0.0.1", AttrNFSExport, "/", AttrMountPoint, "/mnt/n4"}
	n3 := []string{AttrServer, "127.0.0.1", AttrNFSExport, "/srv/nfs", AttrMountPoint, "/mnt/n3"}
	rpc := func(mount []string, version, proc string, kv ...string) []string {
		return append(append(append([]string{}, mount...), AttrRPCSystem, "onc_rpc", AttrONCProgram, "nfs",
			AttrONCVersion, version, AttrONCProcedure, proc), kv...)
	}
	check := func(metric string, want int64, kv []string) {
		t.Helper()
		dp := nfsPoint(t, md, metric, kv...)
		if dp.IntValue() != want {
			t.Errorf("%s%v = %d, want %d", metric, kv, dp.IntValue(), want)
		}
		if dp.Attributes().Len() != len(kv)/2 {
			t.Errorf("%s%v has attributes %v", metric, kv, dp.Attributes().AsRaw())
		}
	}
	// /mnt/n4  LOOKUP: 11 11 0 1984 1056 2 16 23 11
	check("nfs.client.mountstats.rpc.requests", 11, rpc(n4, "4", "LOOKUP"))
	check("nfs.client.mountstats.rpc.transmissions", 11, rpc(n4, "4", "LOOKUP"))
	check("nfs.client.mountstats.rpc.major_timeouts", 0, rpc(n4, "4", "LOOKUP"))
	check("nfs.client.mountstats.rpc.errors", 11, rpc(n4, "4", "LOOKUP"))
	check("nfs.client.mountstats.rpc.io", 1984, rpc(n4, "4", "LOOKUP", AttrNetworkDirection, "transmit"))
	check("nfs.client.mountstats.rpc.io", 1056, rpc(n4, "4", "LOOKUP", AttrNetworkDirection, "receive"))
	for metric, want := range map[string]float64{"rpc.queue.time": 0.002, "rpc.round_trip.time": 0.016, "rpc.execution.time": 0.023} {
		if dp := nfsPoint(t, md, "nfs.client.mountstats."+metric, rpc(n4, "4", "LOOKUP")...); dp.DoubleValue() != want {
			t.Errorf("%s = %v, want %v", metric, dp.DoubleValue(), want)
		}
	}
	// /mnt/n3  GETATTR: 26 26 0 2472 2912 1 17 23 0
	check("nfs.client.mountstats.rpc.requests", 26, rpc(n3, "3", "GETATTR"))
	check("nfs.client.mountstats.rpc.io", 2912, rpc(n3, "3", "GETATTR", AttrNetworkDirection, "receive"))
	// Operations never used on a mount are left out: READ 0 on both, COMMIT 0 on n3.
	for _, kv := range [][]string{rpc(n4, "4", "READ"), rpc(n3, "3", "READ"), rpc(n3, "3", "COMMIT")} {
		if ps := nfsPoints(t, md, "nfs.client.mountstats.rpc.requests", kv...); len(ps) != 0 {
			t.Errorf("unused op exported: %v", kv)
		}
	}
	if n := len(nfsPoints(t, md, "nfs.client.mountstats.rpc.requests", n4...)); n != 21 {
		t.Errorf("%d ops of /mnt/n4 exported, want the 21 used", n)
	}

	// events: 4 253 1 11 4 22 440 ... on n4; 24 334 ... on n3.
	check("nfs.client.mountstats.events", 4, append(n4[:6:6], AttrNFSEvent, "vfs_open"))
	check("nfs.client.mountstats.events", 334, append(n3[:6:6], AttrNFSEvent, "dentry_revalidate"))
	if n := len(nfsPoints(t, md, "nfs.client.mountstats.events", n3...)); n != len(nfsproc.EventNames) {
		t.Errorf("%d events on n3", n)
	}
	// bytes: 71 71 0 0 0 71 0 20
	check("nfs.client.mountstats.io", 71, append(n4[:6:6], AttrNFSIODirection, "write", AttrNFSIOSource, "server"))
	check("nfs.client.mountstats.io", 0, append(n4[:6:6], AttrNFSIODirection, "read", AttrNFSIOSource, "server"))
	check("nfs.client.mountstats.pages", 20, append(n4[:6:6], AttrNFSIODirection, "write"))
	// xprt: tcp 887 1 2 0 1 181 181 0 181 0 2 0 0 on n3.
	check("nfs.client.mountstats.transport.connects", 2, append(n3[:6:6], AttrNetworkTransport, "tcp"))
	check("nfs.client.mountstats.transport.sends", 181, append(n3[:6:6], AttrNetworkTransport, "tcp"))
	check("nfs.client.mountstats.transport.receives", 181, append(n3[:6:6], AttrNetworkTransport, "tcp"))
	check("nfs.client.mountstats.transport.bad_xids", 0, append(n3[:6:6], AttrNetworkTransport, "tcp"))
	check("nfs.client.mountstats.transport.backlog", 0, append(n3[:6:6], AttrNetworkTransport, "tcp"))

	// Every series starts when its mount was set up: age 4 s for n4, 3 s for n3.
	for _, c := range []struct {
		dir string
		age time.Duration
	}{{"/mnt/n4", 4 * time.Second}, {"/mnt/n3", 3 * time.Second}} {
		for _, dp := range nfsPoints(t, md, "nfs.client.mountstats.rpc.requests", AttrMountPoint, c.dir) {
			if got := dp.StartTimestamp().AsTime(); !got.Equal(t0.Add(-c.age)) || !dp.Timestamp().AsTime().Equal(t0) {
				t.Fatalf("%s: start %v time %v, want %v %v", c.dir, got, dp.Timestamp().AsTime(), t0.Add(-c.age), t0)
			}
		}
	}
	if dp := numberPoint(t, findMetric(t, md, "aod.nfs.mountstats.errors").Sum().DataPoints()); dp.IntValue() != 2 {
		t.Errorf("mountstats errors %d", dp.IntValue())
	}
}

func TestMountStatsStartTimes(t *testing.T) {
	m := NewMetrics(testNames, t0, bootTime, "v1")
	mounts := readMountStats(t, "kernel-6.12/nfs/mountstats.before") // ages 2 s (n4) and 1 s (n3)
	start := func(md pmetric.Metrics, dir string) time.Time {
		t.Helper()
		return nfsPoint(t, md, "nfs.client.mountstats.rpc.requests", AttrMountPoint, dir, AttrONCProcedure, "NULL").StartTimestamp().AsTime()
	}
	m.Update(&Snapshot{Time: t0, NFSMounts: mounts})
	md := m.Build(Exponential)
	if got := start(md, "/mnt/n4"); !got.Equal(t0.Add(-2 * time.Second)) {
		t.Fatalf("first start %v", got)
	}

	// A later read whose whole-second age rounds the other way keeps the start.
	later := readMountStats(t, "kernel-6.12/nfs/mountstats.before")
	later[0].Age = 3 * time.Second
	m.Update(&Snapshot{Time: t0.Add(1500 * time.Millisecond), NFSMounts: later})
	if got := start(m.Build(Exponential), "/mnt/n4"); !got.Equal(t0.Add(-2 * time.Second)) {
		t.Errorf("start moved to %v", got)
	}

	// Unmounted and mounted again: the age went down, the series start anew.
	again := readMountStats(t, "kernel-6.12/nfs/mountstats.before")
	again[0].Age = 0
	m.Update(&Snapshot{Time: t0.Add(time.Minute), NFSMounts: again})
	if got := start(m.Build(Exponential), "/mnt/n4"); !got.Equal(t0.Add(time.Minute)) {
		t.Errorf("remount start %v", got)
	}

	// No NFS mounts: no NFS metrics.
	m.Update(&Snapshot{Time: t0.Add(2 * time.Minute)})
	md = m.Build(Exponential)
	if hasMetric(md, "nfs.client.mountstats.rpc.requests") || hasMetric(md, "nfs.client.mountstats.events") {
		t.Error("NFS metrics without NFS mounts")
	}
	if len(m.mounts.m) != 0 {
		t.Errorf("%d unmounted mounts remembered", len(m.mounts.m))
	}
}

func TestMountStatsStackedMountOnce(t *testing.T) {
	mounts := readMountStats(t, "kernel-6.1/nfs/mountstats.after")
	top := mounts[1] // /mnt/n3 mounted again on itself
	top.Ops = append([]nfsproc.Op(nil), top.Ops...)
	top.Ops[1].Ops = 1000 // GETATTR
	mounts = append(mounts, top)
	m := NewMetrics(testNames, t0, bootTime, "v1")
	m.Update(&Snapshot{Time: t0, NFSMounts: mounts})
	md := m.Build(Exponential)
	if dp := nfsPoint(t, md, "nfs.client.mountstats.rpc.requests", AttrMountPoint, "/mnt/n3", AttrONCProcedure, "GETATTR"); dp.IntValue() != 1000 {
		t.Errorf("GETATTR %d, want the top mount's 1000", dp.IntValue())
	}
}

// BenchmarkMountStats measures parsing /proc/self/mountstats of a host with 50 NFS
// mounts (half v3, half v4.2, counters as after the 6.1 workload) and converting it:
// Parse, Update and Build.
func BenchmarkMountStats(b *testing.B) {
	raw, err := os.ReadFile(fixtures.Path("kernel-6.1/nfs/mountstats.after"))
	if err != nil {
		b.Fatal(err)
	}
	var sb strings.Builder
	for i := range 25 {
		sb.WriteString(strings.NewReplacer("/mnt/n4", fmt.Sprintf("/mnt/v4-%d", i), "/mnt/n3", fmt.Sprintf("/mnt/v3-%d", i)).Replace(string(raw)))
	}
	data := sb.String()
	m := NewMetrics(testNames, t0, bootTime, "v1")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := range b.N {
		ms, err := nfsproc.Parse("bench", strings.NewReader(data))
		if err != nil || len(ms) != 50 {
			b.Fatalf("%d mounts, %v", len(ms), err)
		}
		m.Update(&Snapshot{Time: t0.Add(time.Duration(i) * time.Second), NFSMounts: ms})
		_ = m.Build(Exponential)
	}
}
