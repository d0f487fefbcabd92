// Package telemetrytest runs a real OTLP receiver (the collector's own otlpreceiver)
// on loopback for tests that check what aod exports.
package telemetrytest

import (
	"context"
	"net"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// OTLPServer is a running OTLP receiver and what it has received.
type OTLPServer struct {
	GRPC, HTTP string // host:port of the gRPC and HTTP endpoints
	Metrics    *consumertest.MetricsSink
	Logs       *consumertest.LogsSink
	Traces     *consumertest.TracesSink
}

// FreeAddr returns a loopback host:port nothing listens on right now.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// StartOTLP starts an OTLP receiver (gRPC and HTTP) that keeps everything it gets;
// it stops when the test ends.
func StartOTLP(tb testing.TB) *OTLPServer {
	tb.Helper()
	s := &OTLPServer{GRPC: FreeAddr(tb), HTTP: FreeAddr(tb),
		Metrics: new(consumertest.MetricsSink), Logs: new(consumertest.LogsSink), Traces: new(consumertest.TracesSink)}
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig()
	err := confmap.NewFromStringMap(map[string]any{"protocols": map[string]any{
		"grpc": map[string]any{"endpoint": s.GRPC},
		"http": map[string]any{"endpoint": s.HTTP},
	}}).Unmarshal(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	set := receivertest.NewNopSettings(f.Type())
	ctx := context.Background()
	mr, err := f.CreateMetrics(ctx, set, cfg, s.Metrics)
	if err != nil {
		tb.Fatal(err)
	}
	lr, err := f.CreateLogs(ctx, set, cfg, s.Logs)
	if err != nil {
		tb.Fatal(err)
	}
	tr, err := f.CreateTraces(ctx, set, cfg, s.Traces)
	if err != nil {
		tb.Fatal(err)
	}
	// The three signals share one server: starting one starts it.
	if err := mr.Start(ctx, componenttest.NewNopHost()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = mr.Shutdown(ctx); _ = lr.Shutdown(ctx); _ = tr.Shutdown(ctx) })
	return s
}

// WaitFor polls cond until it holds, failing the test after timeout.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Span returns the first span called name the server got, or the zero Span.
func (s *OTLPServer) Span(name string) ptrace.Span {
	for _, td := range s.Traces.AllTraces() {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					if sp.Name() == name {
						return sp
					}
				}
			}
		}
	}
	return ptrace.Span{}
}

// LogRecord returns the first log record with event name event the server got, or
// the zero LogRecord.
func (s *OTLPServer) LogRecord(event string) plog.LogRecord {
	for _, ld := range s.Logs.AllLogs() {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					if lr.EventName() == event {
						return lr
					}
				}
			}
		}
	}
	return plog.LogRecord{}
}
