package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/linuxdiag/aod/internal/bundler"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/otelconv"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/telemetry/telemetrytest"
	"github.com/linuxdiag/aod/internal/upload"
	"github.com/linuxdiag/aod/internal/upload/storetest"
)

// forwardConfig is a collector that takes aod's event records over OTLP (standing
// in for the aod receiver, which needs the kernel), detects, bundles, uploads to
// an S3 store, and sends the anomaly and what came of it to an OTLP backend.
const forwardConfig = `
receivers:
  otlp:
    protocols:
      grpc: {endpoint: %[1]q}
connectors:
  aodanomaly:
    aod:
      watch_interval_sec: 1
      anomalies:
        smb:
          latency: {tool: smbslower, mode: all, acceptable_count: 3, default_threshold_ms: 20}
  aodbundle:
    output_dir: %[2]q
    actions:
      smb: {latency: [mounts]}
    upload:
      enabled: true
      min_backoff: 10ms
      s3: {bucket: bundles, region: %[4]q, endpoint: %[5]q, path_style: true}
exporters:
  otlp_grpc:
    endpoint: %[3]q
    tls: {insecure: true}
service:
  telemetry:
    metrics: {level: none}
    logs: {level: warn}
  pipelines:
    logs/events:      {receivers: [otlp], exporters: [aodanomaly]}
    traces/anomalies: {receivers: [aodanomaly], exporters: [aodbundle, otlp_grpc]}
    traces/bundles:   {receivers: [aodbundle], exporters: [otlp_grpc]}
    logs/bundles:     {receivers: [aodbundle], exporters: [otlp_grpc]}
`

// TestAnomalyBundleAndUploadReachTheOTLPBackend runs the distribution's real
// components in a collector, with its OTLP exporter pointed at a real OTLP
// receiver and uploads going to a real S3-compatible server, fires an anomaly and
// checks that the backend gets the anomaly span, the bundle's records with the
// bundle's local path and the upload's records with the object's URL, all naming
// the anomaly's span.
func TestAnomalyBundleAndUploadReachTheOTLPBackend(t *testing.T) {
	backend := telemetrytest.StartOTLP(t)
	store := storetest.NewProxy(t, storetest.VersityGW(t, "bundles"))
	t.Setenv("AWS_ACCESS_KEY_ID", storetest.S3AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", storetest.S3SecretKey)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	in, out := telemetrytest.FreeAddr(t), t.TempDir()
	path := filepath.Join(t.TempDir(), "collector.yaml")
	cfg := fmt.Sprintf(forwardConfig, in, out, backend.GRPC, storetest.S3Region, store.URL)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	runCollector(t, path)

	// Three slow reads in one window: the latency rule fires.
	t0 := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
	var events []event.Event
	for i := range 3 {
		end := time.Second + time.Duration(i)*100*time.Millisecond
		events = append(events, event.Event{Protocol: proto.SMB, Kind: event.KindSlow, Command: 8, SessionID: 1, TreeID: 5,
			MessageID: uint64(i), StartNs: uint64(end - 50*time.Millisecond), EndNs: uint64(end)})
	}
	sendLogs(t, in, otelconv.NewLogBuilder(noShares{}, receiverClock{t0}, "test").Build(events, t0))

	var anomaly, bundleSpan, uploadSpan ptrace.Span
	telemetrytest.WaitFor(t, time.Minute, "the anomaly, bundle and upload spans", func() bool {
		anomaly, bundleSpan, uploadSpan = backend.Span("smb.anomaly"), backend.Span(bundler.SpanBundle), backend.Span(upload.SpanUpload)
		return anomaly != (ptrace.Span{}) && bundleSpan != (ptrace.Span{}) && uploadSpan != (ptrace.Span{})
	})
	var bundleLog, uploadLog plog.LogRecord
	telemetrytest.WaitFor(t, time.Minute, "the bundle and upload log records", func() bool {
		bundleLog, uploadLog = backend.LogRecord(bundler.EventBundle), backend.LogRecord(upload.EventUpload)
		return bundleLog != (plog.LogRecord{}) && uploadLog != (plog.LogRecord{})
	})

	local := attr(bundleLog.Attributes().AsRaw(), bundler.AttrBundlePath)
	if !strings.HasPrefix(local, filepath.Join(out, "batches")+"/") {
		t.Fatalf("bundle record's path %q", local)
	}
	if _, err := os.Stat(local); err != nil {
		t.Fatal(err)
	}
	created := store.Created("/bundles/aod/v1/")
	url := attr(uploadLog.Attributes().AsRaw(), upload.AttrURL)
	if n := created[strings.TrimPrefix(url, store.URL)]; n != 1 || !strings.HasSuffix(url, ".tar.zst") {
		t.Fatalf("upload record's URL %q; the store created %v", url, created)
	}
	tid, sid := anomaly.TraceID(), anomaly.SpanID()
	t.Logf("the backend got %s %s/%s, %s (child) with %s, and records %s, %s with %s=%s",
		anomaly.Name(), tid, sid, uploadSpan.Name(), upload.AttrURL, bundler.EventBundle, upload.EventUpload, upload.AttrURL, url)
	for _, c := range []struct {
		name       string
		trace      [16]byte
		span       [8]byte
		path, link string
	}{
		{"bundle span", bundleSpan.TraceID(), bundleSpan.ParentSpanID(), attr(bundleSpan.Attributes().AsRaw(), bundler.AttrBundlePath), ""},
		{"upload span", uploadSpan.TraceID(), uploadSpan.ParentSpanID(), attr(uploadSpan.Attributes().AsRaw(), bundler.AttrBundlePath),
			attr(uploadSpan.Attributes().AsRaw(), upload.AttrURL)},
		{"bundle record", bundleLog.TraceID(), bundleLog.SpanID(), local, ""},
		{"upload record", uploadLog.TraceID(), uploadLog.SpanID(), attr(uploadLog.Attributes().AsRaw(), bundler.AttrBundlePath), url},
	} {
		if c.trace != tid || c.span != sid {
			t.Errorf("%s names %x/%x; the anomaly span is %s/%s", c.name, c.trace, c.span, tid, sid)
		}
		if c.path != local {
			t.Errorf("%s: bundle path %q, want %q", c.name, c.path, local)
		}
		if c.link != "" && c.link != url {
			t.Errorf("%s: URL %q, want %q", c.name, c.link, url)
		}
	}
	if o := attr(uploadLog.Attributes().AsRaw(), upload.AttrRecordOutcome); o != upload.OutcomeUploaded {
		t.Errorf("upload outcome %q", o)
	}
}

// runCollector runs the distribution with the configuration at path until the
// test ends.
func runCollector(t *testing.T, path string) {
	t.Helper()
	col, err := otelcol.NewCollector(otelcol.CollectorSettings{
		BuildInfo: component.NewDefaultBuildInfo(),
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{ResolverSettings: confmap.ResolverSettings{
			URIs: []string{path}, ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory()},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- col.Run(context.Background()) }()
	t.Cleanup(func() {
		col.Shutdown()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	telemetrytest.WaitFor(t, time.Minute, "the collector to run", func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("collector stopped: %v", err)
		default:
		}
		return col.GetState() == otelcol.StateRunning
	})
}

// sendLogs exports ld to the OTLP gRPC endpoint at addr.
func sendLogs(t *testing.T, addr string, ld plog.Logs) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequestFromLogs(ld)); err != nil {
		t.Fatal(errors.Join(errors.New("sending the event records"), err))
	}
}

func attr(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}
