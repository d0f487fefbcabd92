package aodbundleconnector

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The collector builds one connector per pair of signals the aodbundle connector
// joins, and fans each anomaly span out to all of them. They share one
// bundleConnector per configuration, which the first of them to be created
// bundles for (the others only add their pipeline), and which starts with the
// first Start and stops with the first Shutdown, as the collector's own shared
// components do.

// instances holds the bundleConnector of each configuration in use.
var instances = &sharedMap{m: map[*Config]*shared{}}

type sharedMap struct {
	mu sync.Mutex
	m  map[*Config]*shared
}

// shared is one bundleConnector and its lifecycle.
type shared struct {
	*bundleConnector
	startOnce, stopOnce sync.Once
	startErr, stopErr   error
}

// signal is one pair of signals' connector. Only the primary one consumes: the
// others see the same spans.
type signal struct {
	s       *shared
	primary bool
	remove  func()
}

// get returns a connector for cfg's bundleConnector (made on first use), after
// attach has added the pipeline it feeds.
func (sm *sharedMap) get(cfg *Config, set connector.Settings, attach func(*bundleConnector)) (*signal, error) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	s, ok := sm.m[cfg]
	if !ok {
		c, err := newBundleConnector(cfg, set)
		if err != nil {
			return nil, err
		}
		s = &shared{bundleConnector: c}
		sm.m[cfg] = s
	}
	s.mu.Lock()
	attach(s.bundleConnector)
	s.mu.Unlock()
	return &signal{s: s, primary: !ok, remove: func() {
		sm.mu.Lock()
		defer sm.mu.Unlock()
		if sm.m[cfg] == s {
			delete(sm.m, cfg)
		}
	}}, nil
}

// Capabilities reports that the connector only reads the spans.
func (g *signal) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

// ConsumeTraces hands the anomalies to the bundler, once for all pipelines.
func (g *signal) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	if !g.primary {
		return nil
	}
	return g.s.consume(ctx, td)
}

// Start starts the shared bundleConnector, once.
func (g *signal) Start(ctx context.Context, host component.Host) error {
	g.s.startOnce.Do(func() { g.s.startErr = g.s.start(ctx, host) })
	return g.s.startErr
}

// Shutdown stops the shared bundleConnector, once, and forgets it: a collector
// reloading its configuration builds a new one.
func (g *signal) Shutdown(ctx context.Context) error {
	g.remove()
	g.s.stopOnce.Do(func() { g.s.stopErr = g.s.shutdown(ctx) })
	return g.s.stopErr
}
