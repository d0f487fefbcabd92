package agent

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/linuxdiag/aod/internal/bundler"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/telemetry/telemetrytest"
	"github.com/linuxdiag/aod/internal/upload"
	"github.com/linuxdiag/aod/internal/upload/storetest"
)

// TestAgentExportsTheUploadRecords fires an anomaly in an agent that uploads to a
// real S3-compatible server and exports to a real OTLP receiver: the receiver gets
// the upload's span and log record, with the bundle's path and the object's URL,
// under the anomaly's span, the same shape the collector's aodbundle connector sends.
func TestAgentExportsTheUploadRecords(t *testing.T) {
	store := storetest.NewProxy(t, storetest.VersityGW(t, "bundles"))
	t.Setenv("AWS_ACCESS_KEY_ID", storetest.S3AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", storetest.S3SecretKey)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	f := startWith(t, time.Second, func(f *fixture) *config.Config {
		text := fmt.Sprintf(agentConfig, f.dir, 50, f.otlp.GRPC, 1, f.prom) + fmt.Sprintf(`upload:
  enabled: true
  min_backoff_sec: 0.01
  s3: {bucket: bundles, region: %s, endpoint: %s, path_style: true}
`, storetest.S3Region, store.URL)
		cfg, _, err := config.Parse("agent-upload-test.yaml", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	})
	for range 3 {
		f.read(150)
	}
	var anomaly, up ptrace.Span
	telemetrytest.WaitFor(t, time.Minute, "the anomaly and upload spans", func() bool {
		anomaly, up = f.otlp.Span("smb.anomaly"), f.otlp.Span(upload.SpanUpload)
		return anomaly != (ptrace.Span{}) && up != (ptrace.Span{})
	})
	var rec plog.LogRecord
	telemetrytest.WaitFor(t, time.Minute, "the upload log record", func() bool {
		rec = f.otlp.LogRecord(upload.EventUpload)
		return rec != (plog.LogRecord{})
	})
	bundles, _ := filepath.Glob(filepath.Join(f.dir, "batches", "aod_quick_*_smb_latency.tar.zst"))
	if len(bundles) != 1 {
		t.Fatalf("bundles %v", bundles)
	}
	created := store.Created("/bundles/aod/v1/")
	for what, attrs := range map[string]map[string]any{"span": up.Attributes().AsRaw(), "log record": rec.Attributes().AsRaw()} {
		url, _ := attrs[upload.AttrURL].(string)
		if created[strings.TrimPrefix(url, store.URL)] != 1 || !strings.HasSuffix(url, ".tar.zst") {
			t.Errorf("upload %s's URL %q; the store created %v", what, url, created)
		}
		if attrs[bundler.AttrBundlePath] != bundles[0] || attrs[upload.AttrRecordOutcome] != upload.OutcomeUploaded {
			t.Errorf("upload %s: %v; want the path %s", what, attrs, bundles[0])
		}
	}
	if up.TraceID() != anomaly.TraceID() || up.ParentSpanID() != anomaly.SpanID() ||
		rec.TraceID() != anomaly.TraceID() || rec.SpanID() != anomaly.SpanID() {
		t.Errorf("upload span %s/%s, record %s/%s; the anomaly span is %s/%s", up.TraceID(), up.ParentSpanID(),
			rec.TraceID(), rec.SpanID(), anomaly.TraceID(), anomaly.SpanID())
	}
}
