package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"

	"go.uber.org/zap"
)

func TestZapWritesThroughSlog(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	z := zapLogger(l).Named("otlp").With(zap.String("exporter", "otlp_grpc"))
	z.Debug("hidden")
	z.Warn("export failed", zap.Int("attempt", 3), zap.Error(errors.New("refused")))
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("one JSON record expected, got %q: %v", buf.String(), err)
	}
	if rec["level"] != "WARN" || rec["msg"] != "export failed" || rec["exporter"] != "otlp_grpc" ||
		rec["logger"] != "otlp" || rec["attempt"] != float64(3) || rec["error"] != "refused" {
		t.Fatalf("record = %v", rec)
	}
}
