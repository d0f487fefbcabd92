package telemetry

import (
	"context"
	"log/slog"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapLogger returns a zap logger writing through l: the collector's exporters this
// package hosts take a *zap.Logger in their settings, and their logs belong in the
// agent's one slog stream, in its format. This is aod's only zap-to-slog adapter.
//
// It is hand-written because no well-kept library goes this way: zap itself ships
// only the opposite direction (go.uber.org/zap/exp/zapslog, a slog.Handler over a
// zapcore.Core, which the collector components use), and the third-party cores are
// single-author packages with next to no users. The core below is small and its test
// pins what it must do: levels, fields, With, logger names.
func zapLogger(l *slog.Logger) *zap.Logger {
	return zap.New(&slogCore{h: l.Handler()})
}

// slogCore is a zapcore.Core forwarding entries to a slog.Handler.
type slogCore struct {
	h     slog.Handler
	attrs []slog.Attr
}

func (c *slogCore) Enabled(l zapcore.Level) bool {
	return c.h.Enabled(context.Background(), slogLevel(l))
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{h: c.h, attrs: append(append([]slog.Attr(nil), c.attrs...), attrs(fields)...)}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	r := slog.NewRecord(e.Time, slogLevel(e.Level), e.Message, 0)
	r.AddAttrs(c.attrs...)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("logger", e.LoggerName))
	}
	r.AddAttrs(attrs(fields)...)
	return c.h.Handle(context.Background(), r)
}

func (c *slogCore) Sync() error { return nil }

// attrs encodes fields the way zap's own encoders see them (errors as their
// message, objects as maps), so every field type comes out as a plain value.
func attrs(fields []zapcore.Field) []slog.Attr {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	out := make([]slog.Attr, 0, len(enc.Fields))
	for k, v := range enc.Fields {
		out = append(out, slog.Any(k, v))
	}
	return out
}

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	}
	return slog.LevelError
}
