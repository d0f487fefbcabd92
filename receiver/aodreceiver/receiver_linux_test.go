//go:build linux

package aodreceiver

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/bpf/bpftest"
	"github.com/linuxdiag/aod/receiver/aodreceiver/internal/metadata"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func metricNames(md pmetric.Metrics) map[string]pmetric.Metric {
	out := map[string]pmetric.Metric{}
	for i := range md.ResourceMetrics().Len() {
		sms := md.ResourceMetrics().At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				out[ms.At(k).Name()] = ms.At(k)
			}
		}
	}
	return out
}

func TestLifecycleSharesOneInstance(t *testing.T) {
	bpftest.Require(t) // the receiver loads the probes
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.CollectionInterval = 20 * time.Millisecond
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()

	metricsSink, logsSink := new(consumertest.MetricsSink), new(consumertest.LogsSink)
	mr, err := f.CreateMetrics(context.Background(), set, cfg, metricsSink)
	if err != nil {
		t.Fatal(err)
	}
	lr, err := f.CreateLogs(context.Background(), set, cfg, logsSink)
	if err != nil {
		t.Fatal(err)
	}
	if component.Component(mr) != component.Component(lr) {
		t.Fatal("metrics and logs pipelines got different receivers for one configuration")
	}
	host := componenttest.NewNopHost()
	err = mr.Start(context.Background(), host)
	if errors.Is(err, unix.EPERM) {
		t.Skipf("BPF not permitted here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	// The second pipeline's Start is the same receiver: nothing is loaded twice.
	if err := lr.Start(context.Background(), host); err != nil {
		t.Fatal(err)
	}

	// Without the cifs module the probes wait to attach, and the self metrics flow.
	waitFor(t, "a metrics collection", func() bool { return len(metricsSink.AllMetrics()) > 0 })
	got := metricNames(metricsSink.AllMetrics()[0])
	for _, name := range []string{"aod.events.read", "aod.events.dropped", "aod.requests.in_flight", "aod.ring.fill"} {
		if _, ok := got[name]; !ok {
			t.Errorf("no %s in %v", name, got)
		}
	}
	if fill := got["aod.ring.fill"].Gauge().DataPoints().At(0).DoubleValue(); fill != 0 {
		t.Errorf("ring fill %v with nothing written", fill)
	}
	// The collector's own receiver telemetry counts what was delivered.
	waitFor(t, "obsreport telemetry", func() bool {
		_, err := tel.GetMetric("otelcol_receiver_accepted_metric_points")
		return err == nil
	})

	// Shutdown does not wait for the cifs module, and a second Shutdown is harmless.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := mr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// A new configuration after a reload gets a fresh instance.
	again, err := f.CreateMetrics(context.Background(), set, cfg, metricsSink)
	if err != nil {
		t.Fatal(err)
	}
	if component.Component(again) == component.Component(mr) {
		t.Error("a shut down receiver was handed out again")
	}
}

func TestShutdownWithoutStart(t *testing.T) {
	f := NewFactory()
	r, err := f.CreateLogs(context.Background(), receivertest.NewNopSettings(metadata.Type), f.CreateDefaultConfig(), consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
