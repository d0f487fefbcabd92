package telemetry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/linuxdiag/aod/internal/telemetry/telemetrytest"
)

func sampleMetrics(name string) pmetric.Metrics {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	m.SetUnit("1")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := sum.DataPoints().AppendEmpty()
	dp.SetIntValue(42)
	dp.Attributes().PutStr("smb.command", "SMB2_READ")
	dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	return md
}

func TestOTLPExportReachesRealReceiver(t *testing.T) {
	for _, proto := range []string{ProtocolGRPC, ProtocolHTTP} {
		t.Run(proto, func(t *testing.T) {
			srv := telemetrytest.StartOTLP(t)
			endpoint := srv.GRPC
			if proto == ProtocolHTTP {
				endpoint = "http://" + srv.HTTP
			}
			ctx := context.Background()
			s, err := New(ctx, Options{
				OTLP:     OTLP{Endpoint: endpoint, Protocol: proto, Insecure: true, Headers: map[string]string{"x-tenant": "t1"}, Compression: "gzip"},
				Resource: map[string]string{"service.name": "aod", "host.name": "h1"},
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.ExportMetrics(ctx, sampleMetrics("smb.client.requests"), pmetric.NewMetrics()); err != nil {
				t.Fatal(err)
			}
			ld := plog.NewLogs()
			ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("slow SMB2_READ")
			if err := s.ExportLogs(ctx, ld); err != nil {
				t.Fatal(err)
			}
			td := ptrace.NewTraces()
			sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			sp.SetName("smb.anomaly")
			sp.SetTraceID([16]byte{1})
			sp.SetSpanID([8]byte{2})
			if err := s.ExportTraces(ctx, td); err != nil {
				t.Fatal(err)
			}
			// Shutdown flushes the exporters' queues: everything must have arrived after it.
			if err := s.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			telemetrytest.WaitFor(t, 10*time.Second, "all signals", func() bool {
				return srv.Metrics.DataPointCount() == 1 && srv.Logs.LogRecordCount() == 1 && len(srv.Traces.AllTraces()) == 1
			})
			got := srv.Metrics.AllMetrics()[0].ResourceMetrics().At(0)
			if v, _ := got.Resource().Attributes().Get("service.name"); v.Str() != "aod" {
				t.Errorf("service.name = %q, want aod", v.Str())
			}
			m := got.ScopeMetrics().At(0).Metrics().At(0)
			if m.Name() != "smb.client.requests" || m.Sum().DataPoints().At(0).IntValue() != 42 {
				t.Errorf("metric = %s %d", m.Name(), m.Sum().DataPoints().At(0).IntValue())
			}
			if n := srv.Traces.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Name(); n != "smb.anomaly" {
				t.Errorf("span = %q", n)
			}
		})
	}
}

func TestPrometheusServesClassicForm(t *testing.T) {
	addr := telemetrytest.FreeAddr(t)
	ctx := context.Background()
	s, err := New(ctx, Options{PrometheusListen: addr, Resource: map[string]string{"service.name": "aod"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(ctx)
	if err := s.ExportMetrics(ctx, pmetric.NewMetrics(), sampleMetrics("smb.client.requests")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(fmt.Sprintf("http://%s/metrics", addr))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := `smb_client_requests_total{job="aod",smb_command="SMB2_READ"} 42`
	if !strings.Contains(string(body), want) {
		t.Fatalf("scrape lacks %q:\n%s", want, body)
	}
}

func TestBadOptions(t *testing.T) {
	_, err := New(context.Background(), Options{OTLP: OTLP{Endpoint: "x:1", Protocol: "udp"}})
	if err == nil || !strings.Contains(err.Error(), `"udp"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestParseHeaders(t *testing.T) {
	h, err := ParseHeaders("a=1, b = two=2 ,")
	if err != nil || h["a"] != "1" || h["b"] != "two=2" || len(h) != 2 {
		t.Fatalf("%v %v", h, err)
	}
	if _, err := ParseHeaders("novalue"); err == nil {
		t.Fatal("want error")
	}
}

// The receiver hands over one batch of event records per ring drain; the OTLP logs
// exporter gathers them into one request instead of sending one per drain.
func TestLogsExportedInBatches(t *testing.T) {
	for _, proto := range []string{ProtocolGRPC, ProtocolHTTP} {
		t.Run(proto, func(t *testing.T) {
			srv := telemetrytest.StartOTLP(t)
			endpoint := srv.GRPC
			if proto == ProtocolHTTP {
				endpoint = "http://" + srv.HTTP
			}
			ctx := context.Background()
			s, err := New(ctx, Options{OTLP: OTLP{Endpoint: endpoint, Protocol: proto, Insecure: true}})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(ctx); err != nil {
				t.Fatal(err)
			}
			for _, body := range []string{"first drain", "second drain", "third drain"} {
				ld := plog.NewLogs()
				ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr(body)
				if err := s.ExportLogs(ctx, ld); err != nil {
					t.Fatal(err)
				}
			}
			// Shutdown flushes the batch being gathered.
			if err := s.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			telemetrytest.WaitFor(t, 10*time.Second, "the records", func() bool { return srv.Logs.LogRecordCount() == 3 })
			if n := len(srv.Logs.AllLogs()); n != 1 {
				t.Errorf("3 batches of records arrived in %d export requests, want 1", n)
			}
		})
	}
}

// A burst of records larger than one request's worth (a storm of slow requests) goes
// out in requests of at most logBatchRecords records plus one drain's each, so that
// none exceeds what a receiver takes in one message; no record is lost.
func TestLogRequestsBounded(t *testing.T) {
	srv := telemetrytest.StartOTLP(t)
	ctx := context.Background()
	s, err := New(ctx, Options{OTLP: OTLP{Endpoint: srv.GRPC, Protocol: ProtocolGRPC, Insecure: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	const drains, perDrain = 17, 500 // over two requests' worth; a drain holds 512 at most
	const records = drains * perDrain
	for drain := range drains {
		ld := plog.NewLogs()
		recs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
		for i := range perDrain {
			recs.AppendEmpty().Body().SetInt(int64(drain*perDrain + i))
		}
		if err := s.ExportLogs(ctx, ld); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	telemetrytest.WaitFor(t, 10*time.Second, "the records", func() bool { return srv.Logs.LogRecordCount() >= records })
	seen := map[int64]bool{}
	for i, ld := range srv.Logs.AllLogs() {
		if n := ld.LogRecordCount(); n >= logBatchRecords+perDrain {
			t.Errorf("request %d holds %d records, want fewer than %d", i, n, logBatchRecords+perDrain)
		}
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					seen[lr.Body().Int()] = true
				}
			}
		}
	}
	if len(seen) != records {
		t.Errorf("%d distinct records arrived, want %d", len(seen), records)
	}
}
