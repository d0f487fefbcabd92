package collectorlog

import (
	"errors"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestNewWritesToTheComponentLogger(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	set := componenttest.NewNopTelemetrySettings()
	set.Logger = zap.New(core).With(zap.String("otelcol.component.id", "aodbundle"))

	log := New(set)
	log.Debug("hidden: below the collector's level")
	log.With("component", "bundler").Warn("bundle skipped", "error", errors.New("busy"), "max_pending", 4)

	all := logs.All()
	if len(all) != 1 {
		t.Fatalf("%d entries, want 1: %v", len(all), all)
	}
	e := all[0]
	fields := e.ContextMap()
	if e.Level != zapcore.WarnLevel || e.Message != "bundle skipped" || fields["otelcol.component.id"] != "aodbundle" ||
		fields["component"] != "bundler" || fields["error"] != "busy" || fields["max_pending"] != int64(4) {
		t.Fatalf("entry %+v fields %v", e.Entry, fields)
	}
	if !e.Caller.Defined || !strings.HasSuffix(e.Caller.File, "collectorlog_test.go") {
		t.Errorf("caller %v, want this test's call site", e.Caller)
	}
}
