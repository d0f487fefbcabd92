package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
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
