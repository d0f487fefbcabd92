package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestNew(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "json", "warn")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "k", 1)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not one JSON record: %q: %v", buf.String(), err)
	}
	if rec["msg"] != "shown" || rec["level"] != "WARN" || rec["k"] != float64(1) {
		t.Errorf("record = %v", rec)
	}

	buf.Reset()
	log, err = New(&buf, "text", "DEBUG")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("dbg")
	if !strings.Contains(buf.String(), "level=DEBUG msg=dbg") {
		t.Errorf("text output = %q", buf.String())
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := New(&bytes.Buffer{}, "xml", "info"); err == nil || !strings.Contains(err.Error(), Formats) {
		t.Errorf("format xml: err = %v", err)
	}
	if _, err := New(&bytes.Buffer{}, "text", "loud"); err == nil || !strings.Contains(err.Error(), Levels) {
		t.Errorf("level loud: err = %v", err)
	}
}

func TestZapWritesThroughSlog(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	z := Zap(l).With(zap.String("exporter", "otlp"))
	z.Debug("hidden")
	z.Warn("export failed", zap.Int("attempt", 3), zap.Error(errors.New("refused")))
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("one JSON record expected, got %q: %v", buf.String(), err)
	}
	if rec["level"] != "WARN" || rec["msg"] != "export failed" || rec["exporter"] != "otlp" ||
		rec["attempt"] != float64(3) || rec["error"] != "refused" {
		t.Fatalf("record = %v", rec)
	}
}
