//go:build linux

package ingest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/linuxdiag/aod/bpf/bpftest"
	"github.com/linuxdiag/aod/internal/fixtures"
	"github.com/linuxdiag/aod/internal/otelconv"
)

// nfsRequests returns the nfs.client.mountstats.rpc.requests point of one mount and
// procedure, or false.
func nfsRequests(md pmetric.Metrics, dir, proc string) (pmetric.NumberDataPoint, bool) {
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := range ms.Len() {
		if ms.At(i).Name() != "nfs.client.mountstats.rpc.requests" {
			continue
		}
		dps := ms.At(i).Sum().DataPoints()
		for j := range dps.Len() {
			a := dps.At(j).Attributes()
			d, _ := a.Get(otelconv.AttrMountPoint)
			p, _ := a.Get(otelconv.AttrONCProcedure)
			if d.Str() == dir && p.Str() == proc {
				return dps.At(j), true
			}
		}
	}
	return pmetric.NumberDataPoint{}, false
}

func TestNFSMountStatsReachTheConsumers(t *testing.T) {
	h := bpftest.New(t)
	var c capture
	r, err := New(Settings{Config: Config{
		CollectionInterval: time.Hour, // collections are taken by the test
		ProcDir:            fixtures.Path("kernel-6.12"),
		MountStats:         fixtures.Path("kernel-7.3/nfs/mountstats.after"),
	}, Kernel: h.Probes()}, c.consumers())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	errorsCounted := func(md pmetric.Metrics) int64 {
		return intPoint(t, metricByName(t, md, "aod.nfs.mountstats.errors").Sum().DataPoints())
	}

	now := time.Now()
	r.collect(context.Background(), now)
	md := (<-c.metrics)[0]
	// 7.3's v4.2 mount: OPEN: 34 34 0 9784 9984 12 66 85 13, mounted 106 s before.
	open, ok := nfsRequests(md, "/mnt/n4", "OPEN")
	if !ok || open.IntValue() != 34 {
		t.Fatalf("OPEN on /mnt/n4: %v %d", ok, open.IntValue())
	}
	for k, want := range map[string]string{
		otelconv.AttrServer: "127.0.0.1", otelconv.AttrNFSExport: "/", otelconv.AttrRPCSystem: "onc_rpc",
		otelconv.AttrONCProgram: "nfs", otelconv.AttrONCVersion: "4",
	} {
		if v, _ := open.Attributes().Get(k); v.AsString() != want {
			t.Errorf("OPEN %s = %q, want %q", k, v.AsString(), want)
		}
	}
	if got, want := open.StartTimestamp().AsTime(), now.Add(-106*time.Second); !got.Equal(want) {
		t.Errorf("start %v, want the mount time %v", got, want)
	}
	if getattr, ok := nfsRequests(md, "/mnt/n3", "GETATTR"); !ok || getattr.IntValue() != 26 {
		t.Errorf("GETATTR on /mnt/n3: %v %d", ok, getattr.IntValue())
	}
	if n := errorsCounted(md); n != 0 {
		t.Errorf("%d mountstats errors", n)
	}

	// No such file (no procfs in sight): no NFS metrics, and no error.
	r.cfg.MountStats = filepath.Join(t.TempDir(), "absent")
	r.collect(context.Background(), now.Add(time.Second))
	md = (<-c.metrics)[0]
	if _, ok := nfsRequests(md, "/mnt/n4", "OPEN"); ok {
		t.Error("NFS metrics without mountstats")
	}
	if n := errorsCounted(md); n != 0 {
		t.Errorf("%d mountstats errors for a missing file", n)
	}

	// A malformed line is counted, and the mounts that parsed are still exported.
	bad := filepath.Join(t.TempDir(), "mountstats")
	if err := os.WriteFile(bad, []byte("device h:/e mounted on /n with fstype nfs4 statvers=1.1\n"+
		"\tage:\t1x\n\tRPC iostats version: 1.1  p/v: 100003/4 (nfs)\n\tper-op statistics\n\t        READ: 5 5 0 1 2 0 1 1 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.cfg.MountStats = bad
	r.collect(context.Background(), now.Add(2*time.Second))
	md = (<-c.metrics)[0]
	if read, ok := nfsRequests(md, "/n", "READ"); !ok || read.IntValue() != 5 {
		t.Errorf("READ on /n: %v %d", ok, read.IntValue())
	}
	if n := errorsCounted(md); n != 1 {
		t.Errorf("%d mountstats errors, want 1", n)
	}
}
