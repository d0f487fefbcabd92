package aodreceiver

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/receiver/aodreceiver/internal/metadata"
)

// NewFactory returns the factory of the aod receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(metadata.Type,
		func() component.Config { return createDefaultConfig() },
		receiver.WithMetrics(createMetrics, metadata.MetricsStability),
		receiver.WithLogs(createLogs, metadata.LogsStability))
}

// One configured receiver is one set of probes, whichever pipelines use it: the
// metrics and the logs pipeline get the same instance.
var (
	instancesMu sync.Mutex
	instances   = map[*Config]*aodReceiver{}
)

func instance(cfg component.Config, set receiver.Settings) *aodReceiver {
	c := cfg.(*Config)
	instancesMu.Lock()
	defer instancesMu.Unlock()
	a := instances[c]
	if a == nil {
		a = &aodReceiver{cfg: c, set: set}
		instances[c] = a
	}
	return a
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	a := instance(cfg, set)
	a.nextMetrics = next
	return a, nil
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	a := instance(cfg, set)
	a.nextLogs = next
	return a, nil
}

// aodReceiver is one configured receiver, started once and shut down once however
// many pipelines hold it.
type aodReceiver struct {
	cfg         *Config
	set         receiver.Settings
	nextMetrics consumer.Metrics
	nextLogs    consumer.Logs

	startOnce, stopOnce sync.Once
	startErr            error

	running runner // the platform's running receiver; nil until started
}

// runner is a started receiver.
type runner interface {
	Shutdown(ctx context.Context) error
}

// Start starts the receiver the first time any of its pipelines starts it.
func (a *aodReceiver) Start(ctx context.Context, host component.Host) error {
	a.startOnce.Do(func() { a.running, a.startErr = start(ctx, host, a) })
	return a.startErr
}

// Shutdown stops the receiver the first time any of its pipelines stops it, and
// forgets it, so that a collector reloading its configuration starts afresh.
func (a *aodReceiver) Shutdown(ctx context.Context) error {
	var err error
	a.stopOnce.Do(func() {
		instancesMu.Lock()
		delete(instances, a.cfg)
		instancesMu.Unlock()
		if a.running != nil {
			err = a.running.Shutdown(ctx)
		}
	})
	return err
}

// thresholds turns the latency settings into the kernel's per-command rules for the
// commands of t; Validate has checked the names.
func (c *ProtocolConfig) thresholds(t *proto.Table) *[proto.MaxCommands]bpf.Threshold {
	var th [proto.MaxCommands]bpf.Threshold
	for i := range t.NumCommands() {
		th[i] = bpf.Threshold{Tracked: true, Latency: c.LatencyThreshold}
	}
	for name, d := range c.CommandThresholds {
		if code, ok := t.LookupCommand(name); ok {
			th[code].Latency = d
		}
	}
	for _, name := range c.ExcludeCommands {
		if code, ok := t.LookupCommand(name); ok {
			th[code].Tracked = false
		}
	}
	return &th
}

// errorFilter turns track_errors into the kernel's filter; Validate has checked it.
func (c *ProtocolConfig) errorFilter(t *proto.Table) bpf.ErrorFilter {
	et, _ := errorFilter(t, c.TrackErrors)
	return bpf.ErrorFilter{All: et.all, Statuses: et.statuses, Errnos: et.errnos}
}
