//go:build linux

package agent

import (
	"testing"
	"time"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/bpf/bpftest"
	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/detector"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/fixtures"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/smb"
)

// TestAODv2ZeroThresholdMakesEveryRequestSlow follows AODv2's integration test file,
// whose SMB2_WRITE has threshold: 0, from the file through the kernel's threshold map
// to the detector: every WRITE, however fast, is slow, and acceptable_count (10) of
// them fire the anomaly.
func TestAODv2ZeroThresholdMakesEveryRequestSlow(t *testing.T) {
	cfg, _, err := config.Load(fixtures.Path("aodv2/tests/integration.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	th, _ := KernelFilters(cfg)
	if th[smb.Write] != (bpf.Threshold{Tracked: true, Latency: 0}) || th[smb.Read] != (bpf.Threshold{Tracked: true, Latency: 20 * time.Millisecond}) {
		t.Fatalf("kernel thresholds WRITE %+v, READ %+v; want 0 and the 20 ms default", th[smb.Write], th[smb.Read])
	}

	h := bpftest.New(t)
	if err := h.Probes().SetThresholds(th); err != nil {
		t.Fatal(err)
	}
	for mid := range uint64(10) {
		h.Enter(0xabc, 1, smb.Write, mid)
		h.Done(0xabc, 1, smb.Write, mid)
	}
	evs := h.Events()
	if len(evs) != 10 {
		t.Fatalf("%d events from 10 WRITEs, want 10: the kernel did not take threshold 0 as every request", len(evs))
	}
	for _, e := range evs {
		if e.Kind != event.KindSlow || e.Command != smb.Write {
			t.Fatalf("event %+v, want a slow WRITE", e)
		}
	}

	lat, err := detector.NewLatency(*detector.FromConfig(cfg, smb.Table).Latency, detector.Env{Protocol: proto.SMB})
	if err != nil {
		t.Fatal(err)
	}
	if got := lat.Process(evs[:9], nil); len(got) != 0 {
		t.Fatalf("9 slow WRITEs fired %d anomalies; acceptable_count is 10", len(got))
	}
	got := lat.Process(evs[9:], nil)
	if len(got) != 1 || got[0].Type != anomaly.TypeLatency {
		t.Fatalf("the 10th slow WRITE gave %+v, want one latency anomaly", got)
	}
}
