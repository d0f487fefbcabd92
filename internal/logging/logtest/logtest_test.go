package logtest

import (
	"errors"
	"log/slog"
	"sync"
	"testing"
)

func TestRecordsMessagesAndAttributes(t *testing.T) {
	log, logs := New()
	child := log.With("component", "bundler").WithGroup("req")
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() { child.Info("bundle written", "n", i, slog.Group("g", "k", "v")) })
	}
	wg.Wait()
	log.Warn("bundle skipped: busy", "error", errors.New("busy"))

	if n := logs.Count("bundle written", "component", "bundler"); n != 3 {
		t.Errorf("count with the With attribute = %d, want 3\n%s", n, logs)
	}
	if n := logs.Count("bundle written", "req.n", 1, "req.g.k", "v"); n != 1 {
		t.Errorf("count with grouped attributes = %d, want 1\n%s", n, logs)
	}
	if n := logs.Count("bundle written", "req.n", 7); n != 0 {
		t.Errorf("count with an attribute no record has = %d", n)
	}
	if n := logs.Count("bundle"); n != 0 {
		t.Errorf("a message prefix counted as the message: %d", n)
	}
	if n := logs.CountContaining("bundle"); n != 4 {
		t.Errorf("containing = %d, want 4", n)
	}
	if got := logs.All()[3]; got.Level != slog.LevelWarn || got.Attrs["error"].String() != "busy" {
		t.Errorf("last record %+v", got)
	}
}
