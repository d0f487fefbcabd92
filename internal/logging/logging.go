// Package logging builds the agent's slog logger from the --log-format and
// --log-level flags: human-readable text by default, JSON for log shippers.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Formats and levels the flags accept, for help text and error messages.
const (
	Formats = "text, json"
	Levels  = "debug, info, warn, error"
)

// ParseLevel converts a level name (case-insensitive) to a slog.Level.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	switch strings.ToLower(s) {
	case "debug":
		l = slog.LevelDebug
	case "info":
		l = slog.LevelInfo
	case "warn", "warning":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		return 0, fmt.Errorf("unknown log level %q; allowed: %s", s, Levels)
	}
	return l, nil
}

// New returns a logger writing to w in format ("text" or "json") at level and above.
func New(w io.Writer, format, level string) (*slog.Logger, error) {
	l, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: l}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("unknown log format %q; allowed: %s", format, Formats)
}
