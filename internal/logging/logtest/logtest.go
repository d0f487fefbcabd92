// Package logtest records what a library logs through log/slog, so that tests can
// assert that a message was logged, how often, and with which attributes.
package logtest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Record is one logged message with its attributes, those added by Logger.With
// included. Keys inside groups are joined with dots ("group.key").
type Record struct {
	Level   slog.Level
	Message string
	Attrs   map[string]slog.Value
}

// Logs holds every record logged through the logger New returned. It is safe for
// concurrent use: libraries log from their own goroutines.
type Logs struct {
	mu      sync.Mutex
	records []Record
}

// New returns a logger that records every level into the returned Logs.
func New() (*slog.Logger, *Logs) {
	l := &Logs{}
	return slog.New(&handler{logs: l}), l
}

// All returns a copy of the records so far.
func (l *Logs) All() []Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Record(nil), l.records...)
}

// Count returns how many records have exactly the message msg and, for each
// key/value pair in attrs (given as to slog.Logger.Info), an equal attribute.
func (l *Logs) Count(msg string, attrs ...any) int {
	// A record parses the pairs exactly as the logger does.
	want := slog.NewRecord(time.Time{}, 0, "", 0)
	want.Add(attrs...)
	n := 0
	for _, r := range l.All() {
		if r.Message != msg {
			continue
		}
		match := true
		want.Attrs(func(a slog.Attr) bool {
			v, ok := r.Attrs[a.Key]
			match = ok && v.Equal(a.Value.Resolve())
			return match
		})
		if match {
			n++
		}
	}
	return n
}

// CountContaining returns how many records have a message containing snippet.
func (l *Logs) CountContaining(snippet string) int {
	n := 0
	for _, r := range l.All() {
		if strings.Contains(r.Message, snippet) {
			n++
		}
	}
	return n
}

// String lists the records, for test failure messages.
func (l *Logs) String() string {
	var b strings.Builder
	for _, r := range l.All() {
		fmt.Fprintf(&b, "%s %q", r.Level, r.Message)
		for k, v := range r.Attrs {
			fmt.Fprintf(&b, " %s=%v", k, v)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// handler is a slog.Handler appending to logs; With and WithGroup copy it.
type handler struct {
	logs   *Logs
	attrs  map[string]slog.Value
	prefix string // the open groups, each followed by a dot
}

func (*handler) Enabled(context.Context, slog.Level) bool { return true }

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	rec := Record{Level: r.Level, Message: r.Message, Attrs: make(map[string]slog.Value, len(h.attrs)+r.NumAttrs())}
	for k, v := range h.attrs {
		rec.Attrs[k] = v
	}
	r.Attrs(func(a slog.Attr) bool {
		add(rec.Attrs, h.prefix, a)
		return true
	})
	h.logs.mu.Lock()
	h.logs.records = append(h.logs.records, rec)
	h.logs.mu.Unlock()
	return nil
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := &handler{logs: h.logs, prefix: h.prefix, attrs: make(map[string]slog.Value, len(h.attrs)+len(attrs))}
	for k, v := range h.attrs {
		c.attrs[k] = v
	}
	for _, a := range attrs {
		add(c.attrs, h.prefix, a)
	}
	return c
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{logs: h.logs, attrs: h.attrs, prefix: h.prefix + name + "."}
}

// add stores a under prefix, flattening groups into dotted keys.
func add(m map[string]slog.Value, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			add(m, p, g)
		}
		return
	}
	m[prefix+a.Key] = v
}
