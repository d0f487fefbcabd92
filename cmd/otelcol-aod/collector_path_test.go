package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/linuxdiag/aod/exporter/aodbundleconnector"
	"github.com/linuxdiag/aod/internal/actions"
	"github.com/linuxdiag/aod/internal/anomalypdata"
	"github.com/linuxdiag/aod/internal/archive"
	"github.com/linuxdiag/aod/internal/archive/archivetest"
	"github.com/linuxdiag/aod/internal/bundler"
	"github.com/linuxdiag/aod/internal/cifsproc"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/otelconv"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/processor/aodanomalyconnector"
)

// receiverClock stands for the receiver's monotonic-to-wall converter: monotonic 0 is t0.
type receiverClock struct{ t0 time.Time }

func (c receiverClock) UnixNano(mono uint64) int64 { return c.t0.UnixNano() + int64(mono) }

type noShares struct{}

func (noShares) Lookup(proto.Protocol, uint64, uint32) (cifsproc.Name, bool) {
	return cifsproc.Name{}, false
}

// In a collector the events reach the bundle through the anomaly span: receiver
// records -> detector connector -> span -> aodbundle connector -> events.jsonl.
func TestCollectorPathBundlesTheTriggeringEvents(t *testing.T) {
	ctx := context.Background()
	cf := aodanomalyconnector.NewFactory()
	ccfg := cf.CreateDefaultConfig().(*aodanomalyconnector.Config)
	ccfg.AOD = map[string]any{"watch_interval_sec": 1, "anomalies": map[string]any{"smb": map[string]any{
		"latency": map[string]any{"tool": "smbslower", "mode": "all", "acceptable_count": 3, "default_threshold_ms": 20}}}}
	sink := new(consumertest.TracesSink)
	conn, err := cf.CreateLogsToTraces(ctx, connectortest.NewNopSettings(cf.Type()), ccfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Shutdown(ctx) }()

	// Three slow requests, one of them from a process, as the receiver records them.
	t0 := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
	var events []event.Event
	for i, lat := range []time.Duration{30, 45, 700} {
		end := time.Second + time.Duration(i)*200*time.Millisecond
		e := event.Event{Protocol: proto.SMB, Kind: event.KindSlow, Command: 8, SessionID: 0x936c11ff, TreeID: 5, MessageID: uint64(10 + i),
			StartNs: uint64(end - lat*time.Millisecond), EndNs: uint64(end)}
		if i == 2 {
			e.Command, e.Pid, e.Tgid = 9, 43, 42
			copy(e.Comm[:], "fio")
		}
		events = append(events, e)
	}
	ld := otelconv.NewLogBuilder(noShares{}, receiverClock{t0}, "test").Build(events, t0)
	if err := conn.ConsumeLogs(ctx, ld); err != nil {
		t.Fatal(err)
	}
	if sink.SpanCount() != 1 {
		t.Fatalf("%d anomaly spans, want 1", sink.SpanCount())
	}
	span := sink.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	if v, _ := span.Attributes().Get(anomalypdata.AttrEvents); strings.Count(v.Str(), "\n") != 3 {
		t.Fatalf("span's %s: %q", anomalypdata.AttrEvents, v.Str())
	}

	f := aodbundleconnector.NewFactory()
	cfg := f.CreateDefaultConfig().(*aodbundleconnector.Config)
	cfg.OutputDir = t.TempDir()
	cfg.Actions = map[string]map[string][]string{"smb": {"latency": {actions.NameMounts}}}
	exp, err := f.CreateTracesToTraces(ctx, connectortest.NewNopSettings(f.Type()), cfg, consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = exp.Shutdown(ctx) }()
	if err := exp.ConsumeTraces(ctx, sink.AllTraces()[0]); err != nil {
		t.Fatal(err)
	}
	path := waitForBundle(t, cfg.OutputDir)
	_, members, err := archivetest.Members(path)
	if err != nil {
		t.Fatal(err)
	}

	var man bundler.Manifest
	if err := json.Unmarshal(members[bundler.ManifestName], &man); err != nil {
		t.Fatal(err)
	}
	for _, r := range man.Actions {
		if r.Name == actions.NameEvents && r.Status != actions.StatusOK {
			t.Errorf("events action %+v", r)
		}
	}
	if man.Anomaly.Events != 3 || man.Anomaly.Rule != "count" {
		t.Errorf("manifest anomaly %+v", man.Anomaly)
	}
	sc := bufio.NewScanner(strings.NewReader(string(members["events.jsonl"])))
	var got []event.Event
	for sc.Scan() {
		e, _, err := anomalypdata.ParseEvent(sc.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", sc.Text(), err)
		}
		got = append(got, e)
	}
	if len(got) != len(events) {
		t.Fatalf("events.jsonl has %d events, want %d:\n%s", len(got), len(events), members["events.jsonl"])
	}
	for i, want := range events {
		// Dated on the wall clock, as the receiver dated them.
		want.StartNs += uint64(t0.UnixNano())
		want.EndNs += uint64(t0.UnixNano())
		if got[i] != want {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, got[i], want)
		}
	}
}

// waitForBundle polls the batches directory until a complete bundle appears.
func waitForBundle(t *testing.T, outputDir string) string {
	t.Helper()
	dir := filepath.Join(outputDir, archive.BatchesDir)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if _, ok := archive.ParseBundleName(e.Name()); ok {
				return filepath.Join(dir, e.Name())
			}
		}
	}
	t.Fatal("no bundle within 30 s")
	return ""
}
