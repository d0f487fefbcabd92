package aodanomalyconnector

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/anomalypdata"
	"github.com/linuxdiag/aod/internal/collectorlog"
	"github.com/linuxdiag/aod/internal/detector"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/proto"
)

// unixClock dates everything in Unix nanoseconds: the records carry wall-clock
// timestamps, so the detectors' windows run on them instead of CLOCK_MONOTONIC.
type unixClock struct{}

func (unixClock) Now() time.Time    { return time.Now() }
func (unixClock) Monotonic() uint64 { return uint64(time.Now().UnixNano()) }

func (unixClock) Time(ns uint64) time.Time { return time.Unix(0, int64(ns)) }

// anomalyConnector runs one detector set. Exactly one of traces and metrics is set.
type anomalyConnector struct {
	logger  *slog.Logger
	traces  consumer.Traces
	metrics consumer.Metrics
	every   time.Duration // metrics re-send period

	mu       sync.Mutex // guards everything below
	set      detector.Sets
	shares   shareNames
	work     workloads
	events   []event.Event
	found    []anomaly.Anomaly
	resource pcommon.Resource // of the latest records, for poll-time anomalies
	counter  *anomalypdata.Counter
	pollErr  string // last poll error logged, to log each distinct one once

	cancel context.CancelFunc
	done   sync.WaitGroup
}

func newConnector(set connector.Settings, cfg *Config, traces consumer.Traces, metrics consumer.Metrics) (*anomalyConnector, error) {
	aod, err := cfg.aod()
	if err != nil {
		return nil, err
	}
	c := &anomalyConnector{
		logger:   collectorlog.New(set.TelemetrySettings),
		traces:   traces,
		metrics:  metrics,
		every:    cfg.MetricsInterval,
		shares:   make(shareNames),
		work:     make(workloads),
		resource: pcommon.NewResource(),
		counter:  anomalypdata.NewCounter(time.Now()),
	}
	c.set, err = detector.NewSets(aod, func(proto.Protocol) detector.Env {
		return detector.Env{
			Clock:    unixClock{},
			Share:    func(session uint64, tree uint32) string { return c.shares.lookup(session, tree) },
			Workload: c.work.lookup,
			Proc:     os.DirFS(cfg.ProcRoot),
		}
	})
	if err != nil {
		return nil, err
	}
	for _, k := range c.set.Keys() {
		c.counter.Declare(k)
	}
	return c, nil
}

// Capabilities reports that the connector only reads the records.
func (c *anomalyConnector) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

// Start launches the connection detector's polling and, for the metrics side, the
// periodic re-send of the counter.
func (c *anomalyConnector) Start(context.Context, component.Host) error {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	if every := c.set.PollInterval(); every > 0 {
		c.loop(ctx, every, c.poll)
	}
	if c.metrics != nil {
		c.loop(ctx, c.every, func(ctx context.Context) { c.emit(ctx, nil, c.currentResource()) })
	}
	return nil
}

func (c *anomalyConnector) loop(ctx context.Context, every time.Duration, f func(context.Context)) {
	c.done.Add(1)
	go func() {
		defer c.done.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				f(ctx)
			}
		}
	}()
}

// Shutdown stops the background work; it is safe without Start.
func (c *anomalyConnector) Shutdown(context.Context) error {
	if c.cancel != nil {
		c.cancel()
	}
	c.done.Wait()
	return nil
}

// ConsumeLogs runs the aod event records through the detectors and sends what fires,
// under the resource of the records that fired it. Other records are ignored.
func (c *anomalyConnector) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	var errs []error
	for _, rl := range ld.ResourceLogs().All() {
		found := c.detect(rl)
		if len(found) > 0 {
			errs = append(errs, c.emit(ctx, found, rl.Resource()))
		}
	}
	return errors.Join(errs...)
}

// detect decodes one resource's records and runs them through the detectors.
func (c *anomalyConnector) detect(rl plog.ResourceLogs) []anomaly.Anomaly {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = c.events[:0]
	for _, sl := range rl.ScopeLogs().All() {
		for _, lr := range sl.LogRecords().All() {
			c.events = append(c.events, event.Event{})
			e := &c.events[len(c.events)-1]
			if !decode(lr, e) {
				c.events = c.events[:len(c.events)-1]
				continue
			}
			if e.Kind == event.KindSlow || e.Kind == event.KindError {
				c.shares.learn(lr.Attributes(), e)
				c.work.learn(lr.Attributes(), e.CgroupID)
			}
		}
	}
	if len(c.events) == 0 {
		return nil
	}
	rl.Resource().CopyTo(c.resource)
	c.found = c.set.Process(c.events, c.found[:0])
	return c.take()
}

// take hands out the anomalies found, which the next detection will not overwrite.
func (c *anomalyConnector) take() []anomaly.Anomaly {
	if len(c.found) == 0 {
		return nil
	}
	found := make([]anomaly.Anomaly, len(c.found))
	copy(found, c.found)
	clear(c.found) // drop references to the events
	return found
}

func (c *anomalyConnector) currentResource() pcommon.Resource {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := pcommon.NewResource()
	c.resource.CopyTo(r)
	return r
}

func (c *anomalyConnector) poll(ctx context.Context) {
	c.mu.Lock()
	var err error
	c.found, err = c.set.Poll(c.found[:0])
	found := c.take()
	if err != nil && err.Error() != c.pollErr {
		c.logger.Warn("connection detector cannot read the TCP tables", "error", err)
	}
	c.pollErr = ""
	if err != nil {
		c.pollErr = err.Error()
	}
	c.mu.Unlock()
	if len(found) > 0 {
		if err := c.emit(ctx, found, c.currentResource()); err != nil {
			c.logger.Warn("cannot send connection anomalies", "error", err)
		}
	}
}

// emit sends anomalies as spans, or counts them and sends the counter.
func (c *anomalyConnector) emit(ctx context.Context, found []anomaly.Anomaly, res pcommon.Resource) error {
	for i := range found {
		a := &found[i]
		c.logger.Info("anomaly detected", "type", a.Type, "rule", a.Rule,
			"reason", a.Reason, "suppressed", a.Suppressed)
	}
	if c.traces != nil {
		return c.traces.ConsumeTraces(ctx, anomalypdata.Traces(res, found))
	}
	c.counter.Add(found)
	return c.metrics.ConsumeMetrics(ctx, c.counter.Metrics(res, time.Now()))
}
