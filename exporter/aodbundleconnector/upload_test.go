package aodbundleconnector

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/linuxdiag/aod/exporter/aodbundleconnector/internal/metadata"
	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/anomalypdata"
	"github.com/linuxdiag/aod/internal/bundler"
	"github.com/linuxdiag/aod/internal/upload"
	"github.com/linuxdiag/aod/internal/upload/storetest"
)

// TestUploadToS3 runs the exporter with upload on against a real S3-compatible
// store: the anomaly's bundle is stored once, and the upload metrics reach the
// collector's meter.
func TestUploadToS3(t *testing.T) {
	srv := storetest.VersityGW(t, "bundles")
	p := storetest.NewProxy(t, srv)
	t.Setenv("AWS_ACCESS_KEY_ID", storetest.S3AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", storetest.S3SecretKey)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	cfg := createDefaultConfig()
	if cfg.Upload.Enabled || cfg.Upload.Prefix != upload.DefaultPrefix || cfg.Upload.Concurrency != upload.DefaultConcurrency {
		t.Fatalf("upload defaults differ from the agent's: %+v", cfg.Upload)
	}
	cfg.OutputDir = t.TempDir()
	cfg.Actions = map[string]map[string][]string{"smb": {"error": {"mounts"}}}
	cfg.Upload.Enabled = true
	cfg.Upload.S3 = &S3UploadConfig{Bucket: "bundles", Region: storetest.S3Region, Endpoint: p.URL, PathStyle: true}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	set := connectortest.NewNopSettings(metadata.Type)
	set.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	e, err := newBundleConnector(cfg, set)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecords()
	e.logs = rec.logsConsumer(t)
	ctx := context.Background()
	if err := e.start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := e.shutdown(ctx); err != nil {
			t.Error(err)
		}
	}()
	a := sample()
	if err := e.consume(ctx, anomalypdata.Traces(pcommon.NewResource(), []anomaly.Anomaly{a})); err != nil {
		t.Fatal(err)
	}
	// The bundle's record, then its upload's: same anomaly, same path, the URL.
	written := rec.nextLog(t)
	up := rec.nextLog(t)
	path := str(written.Attributes(), bundler.AttrBundlePath)
	if written.EventName() != bundler.EventBundle || up.EventName() != upload.EventUpload || path == "" ||
		str(up.Attributes(), bundler.AttrBundlePath) != path || up.TraceID() != a.TraceID || up.SpanID() != a.SpanID ||
		str(up.Attributes(), upload.AttrRecordOutcome) != upload.OutcomeUploaded ||
		!strings.HasPrefix(str(up.Attributes(), upload.AttrURL), p.URL+"/bundles/aod/v1/") {
		t.Fatalf("records %s %v then %s %s/%s %v", written.EventName(), written.Attributes().AsRaw(),
			up.EventName(), up.TraceID(), up.SpanID(), up.Attributes().AsRaw())
	}
	created := p.Created("/bundles/aod/v1/")
	var bundles int
	for path, n := range created {
		if n != 1 {
			t.Errorf("%s stored %d times", path, n)
		}
		if strings.HasSuffix(path, "-smb-error-"+path[len(path)-len("0123456789abcdef.tar.zst"):]) {
			bundles++
		}
	}
	if len(created) != 2 || bundles != 1 {
		t.Errorf("stored %v; want one smb-error bundle and its manifest", created)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	if n := counter(rm, upload.MetricBundles, upload.AttrOutcome, upload.OutcomeUploaded); n != 1 {
		t.Errorf("%s{outcome=uploaded} = %d", upload.MetricBundles, n)
	}
	var hist bool
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == upload.MetricDuration && len(h.DataPoints) == 1 && h.DataPoints[0].Count == 1 {
				hist = true
			}
		}
	}
	if !hist {
		t.Errorf("no %s histogram with one upload", upload.MetricDuration)
	}
}
