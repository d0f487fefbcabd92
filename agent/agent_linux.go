package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/actions"
	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/anomalypdata"
	"github.com/linuxdiag/aod/internal/bundler"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/control"
	"github.com/linuxdiag/aod/internal/detector"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/ingest"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/smb"
	"github.com/linuxdiag/aod/internal/telemetry"
	"github.com/linuxdiag/aod/internal/version"
	"github.com/linuxdiag/aod/internal/wallclock"
)

// Options are what the agent needs besides its configuration.
type Options struct {
	Logger *slog.Logger
	// ControlSocket is where `aod top` and `aod snapshot` reach the agent; empty: none.
	ControlSocket string
	// Kernel, if set, are probes the caller loaded and attached (tests); otherwise the
	// agent loads its own and waits for the cifs module.
	Kernel ingest.Kernel
	// ProcDir overrides /proc/fs/cifs (tests).
	ProcDir string
	// Actions replace the built-in actions of the same name (tests).
	Actions actions.Table
}

// Agent is one running aod.
type Agent struct {
	log  *slog.Logger
	opts Options
	res  pcommon.Resource

	sinks   *telemetry.Sinks
	recv    *ingest.Receiver
	clock   *wallclock.Converter
	ctl     *control.Server
	counter *anomalypdata.Counter

	// mu guards the configuration-dependent stages that SIGHUP replaces.
	mu      sync.Mutex
	cfg     *config.Config
	det     detector.Sets
	bundler *bundler.Bundler
	found   []anomaly.Anomaly

	pollStop chan struct{}
	pollDone chan struct{}

	// otlpEvery is the OTLP metrics export period; collections in between (made for
	// the Prometheus endpoint's freshness) are not pushed. stopping makes the final
	// collection pushed whatever the time.
	otlpEvery time.Duration
	lastOTLP  time.Time
	stopping  atomic.Bool
}

// promRefresh is how stale the Prometheus endpoint may get: metrics are collected at
// least this often when it is served, whatever the OTLP export period.
const promRefresh = 10 * time.Second

// New prepares an agent for cfg. Nothing touches the kernel or the network until Start.
func New(cfg *config.Config, o Options) (*Agent, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	a := &Agent{log: o.Logger, opts: o, cfg: cfg, clock: wallclock.New(time.Minute),
		counter: anomalypdata.NewCounter(time.Now())}
	a.res = resource()
	attrs := map[string]string{}
	a.res.Attributes().Range(func(k string, v pcommon.Value) bool { attrs[k] = v.AsString(); return true })

	var err error
	a.sinks, err = telemetry.New(context.Background(), sinkOptions(cfg, attrs, o.Logger))
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	th, ef := KernelFilters(cfg)
	a.otlpEvery, a.lastOTLP = cfg.Telemetry.OTLP.ExportInterval, time.Now()
	collect := a.otlpEvery
	if cfg.Telemetry.Prometheus.Listen != "" {
		collect = min(collect, promRefresh)
	}
	rc := ingest.Config{
		CollectionInterval: collect,
		Exponential:        cfg.Telemetry.OTLP.Endpoint != "",
		Explicit:           cfg.Telemetry.Prometheus.Listen != "",
		ProcDir:            o.ProcDir,
	}
	a.recv, err = ingest.New(ingest.Settings{
		Config:  rc,
		Kernel:  o.Kernel,
		Probes:  ingest.ProbeConfig{Thresholds: th, Errors: ef},
		Logger:  o.Logger,
		Version: version.Version,
		OnAttach: func(r bpf.AttachReport, err error) {
			if err != nil {
				a.log.Error("kernel probes not attached", "err", err)
			}
		},
	}, ingest.Consumers{
		Metrics: a.exportMetrics,
		Logs:    a.sinks.ExportLogs,
		Events:  a.onEvents,
	})
	if err != nil {
		return nil, err
	}
	if err := a.configure(cfg); err != nil {
		return nil, err
	}
	return a, nil
}

// configure builds the detectors and the bundler for cfg. The caller holds no lock;
// the swap happens under a.mu.
func (a *Agent) configure(cfg *config.Config) error {
	det, err := detector.NewSets(cfg, func(p proto.Protocol) detector.Env {
		env := detector.Env{Clock: detector.SystemClock{Converter: a.clock}}
		if p == proto.SMB { // the receiver resolves cifs (session, tree) ids
			env.Share = detector.SharesFrom(a.recv.Names().Lookup)
		}
		return env
	})
	if err != nil {
		return fmt.Errorf("detectors: %w", err)
	}
	bo := bundler.FromConfig(cfg)
	bo.Logger = a.log
	bo.Inflight = a.inflight
	bo.Extra = a.opts.Actions
	b, err := bundler.New(bo)
	if err != nil {
		return fmt.Errorf("bundles: %w", err)
	}
	for _, k := range det.Keys() {
		a.counter.Declare(k)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cfg, a.det, a.bundler = cfg, det, b
	return nil
}

// Start starts the exporters, the bundler, the receiver (which attaches the probes in
// the background, waiting for the cifs module if needed) and the control socket.
func (a *Agent) Start(ctx context.Context) error {
	if err := a.sinks.Start(ctx); err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	if err := a.bundler.Start(); err != nil {
		return fmt.Errorf("bundles: %w", err)
	}
	// The control socket exists before the first event arrives: onEvents reads a.ctl
	// without a lock.
	if a.opts.ControlSocket != "" {
		ctl, err := control.Listen(a.opts.ControlSocket, a.snapshot, a.log)
		if err != nil {
			// The agent still works without its control socket; say why aod top won't.
			a.log.Warn("control socket unavailable: aod top and aod snapshot cannot reach this agent", "err", err)
		} else {
			a.ctl = ctl
		}
	}
	if err := a.recv.Start(ctx); err != nil {
		return fmt.Errorf("receiver: %w", err)
	}
	if a.opts.Kernel != nil {
		// Probes the caller loaded start with nothing tracked.
		if err := a.applyFilters(a.cfg); err != nil {
			return err
		}
	}
	a.pollStop, a.pollDone = make(chan struct{}), make(chan struct{})
	go a.poll()
	logPlan(a.cfg, a.log)
	return nil
}

// Shutdown writes the shutdown dump (bundle.shutdown_dump) while the probes still
// see the requests in flight, then stops reading, finishes bundles in progress,
// flushes the exporters and detaches the probes, within ctx. The dump takes at most
// half of ctx's time: an action that hangs is cut off and recorded, not waited for.
func (a *Agent) Shutdown(ctx context.Context) error {
	var errs []error
	if a.pollStop != nil {
		close(a.pollStop)
		<-a.pollDone
	}
	if a.ctl != nil {
		errs = append(errs, a.ctl.Close())
	}
	a.shutdownDump(ctx)
	// The receiver hands its last events to the detectors and its last metrics to the
	// exporters before it returns.
	a.stopping.Store(true)
	errs = append(errs, a.recv.Shutdown(ctx))
	a.mu.Lock()
	b := a.bundler
	a.mu.Unlock()
	errs = append(errs, b.Shutdown(ctx))
	errs = append(errs, a.sinks.Shutdown(ctx))
	return errors.Join(errs...)
}

// shutdownDump writes the bundle of the stopping agent, if the configuration wants
// one. Its failure is logged: it must not stop the rest of the shutdown.
func (a *Agent) shutdownDump(ctx context.Context) {
	a.mu.Lock()
	b, on := a.bundler, a.cfg.Bundle.ShutdownDump
	a.mu.Unlock()
	if !on {
		return
	}
	rep, err := b.ShutdownDump(ctx)
	if err != nil {
		a.log.Error("shutdown bundle not written", "err", err)
		return
	}
	a.log.Info("shutdown bundle written", "path", rep.Path, "bytes", rep.Bytes, "actions", len(rep.Actions))
}

// Reload applies a new configuration: thresholds and error filters go into the kernel
// maps (the programs stay loaded), detectors and the bundler are rebuilt. Settings that
// need a restart (telemetry destinations, ring sizes) are reported, not applied.
func (a *Agent) Reload(ctx context.Context, cfg *config.Config) error {
	a.mu.Lock()
	old := a.cfg
	oldBundler := a.bundler
	a.mu.Unlock()
	if cfg.Telemetry.OTLP.Endpoint != old.Telemetry.OTLP.Endpoint || cfg.Telemetry.Prometheus.Listen != old.Telemetry.Prometheus.Listen {
		a.log.Warn("telemetry destinations changed: they take effect when aod restarts")
	}
	if err := a.applyFilters(cfg); err != nil {
		return err
	}
	if err := a.configure(cfg); err != nil {
		return err
	}
	a.mu.Lock()
	b := a.bundler
	a.mu.Unlock()
	if err := b.Start(); err != nil {
		return fmt.Errorf("bundles: %w", err)
	}
	// The old bundler finishes what it started; its captures stop.
	if err := oldBundler.Shutdown(ctx); err != nil {
		a.log.Warn("previous bundler did not stop cleanly", "err", err)
	}
	logPlan(cfg, a.log)
	return nil
}

// applyFilters writes cfg's thresholds and error filter into the kernel maps.
func (a *Agent) applyFilters(cfg *config.Config) error {
	th, ef := KernelFilters(cfg)
	k, ok := a.recv.Kernel().(interface {
		SetThresholds(*[smb.NumCommands]bpf.Threshold) error
		SetErrorFilter(bpf.ErrorFilter) error
	})
	if !ok {
		return nil // not loaded yet: the receiver loads them with cfg's filters
	}
	if err := k.SetThresholds(th); err != nil {
		return fmt.Errorf("kernel thresholds: %w", err)
	}
	if err := k.SetErrorFilter(ef); err != nil {
		return fmt.Errorf("kernel error filter: %w", err)
	}
	return nil
}

// Snapshot writes an on-demand bundle (SIGUSR1, aod snapshot).
func (a *Agent) Snapshot(ctx context.Context) (string, error) { return a.snapshot(ctx) }

func (a *Agent) snapshot(ctx context.Context) (string, error) {
	a.mu.Lock()
	b := a.bundler
	a.mu.Unlock()
	rep, err := b.Snapshot(ctx)
	if err != nil {
		return "", err
	}
	a.log.Info("snapshot bundle written", "path", rep.Path, "bytes", rep.Bytes)
	return rep.Path, nil
}

// onEvents runs the detectors on each batch the receiver decodes.
func (a *Agent) onEvents(batch []event.Event) {
	if a.ctl != nil && a.ctl.Watching() {
		for i := range batch {
			a.ctl.Publish(a.record(&batch[i]))
		}
	}
	a.mu.Lock()
	a.found = a.det.Process(batch, a.found[:0])
	found := a.found
	b := a.bundler
	if len(found) > 0 {
		a.handle(b, found)
	}
	a.mu.Unlock()
}

func (a *Agent) poll() {
	defer close(a.pollDone)
	a.mu.Lock()
	every := a.det.PollInterval()
	a.mu.Unlock()
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var found []anomaly.Anomaly
	for {
		select {
		case <-a.pollStop:
			return
		case <-t.C:
		}
		a.mu.Lock()
		var err error
		found, err = a.det.Poll(found[:0])
		if err != nil {
			a.log.Warn("connection poll failed", "err", err)
		}
		if len(found) > 0 {
			a.handle(a.bundler, found)
		}
		a.mu.Unlock()
	}
}

// handle reports anomalies and starts their bundles. Called with a.mu held; it never
// blocks on a bundle (Submit returns at once).
func (a *Agent) handle(b *bundler.Bundler, found []anomaly.Anomaly) {
	ctx := context.Background()
	a.counter.Add(found)
	if err := a.sinks.ExportTraces(ctx, anomalypdata.Traces(a.res, found)); err != nil {
		a.log.Warn("anomaly spans not exported", "err", err)
	}
	if err := a.sinks.ExportLogs(ctx, anomalypdata.Logs(a.res, found)); err != nil {
		a.log.Warn("anomaly records not exported", "err", err)
	}
	for _, an := range found {
		a.log.Warn("anomaly", "protocol", an.Protocol, "type", an.Type, "rule", an.Rule,
			"count", an.Count, "reason", an.Reason, "suppressed", an.Suppressed)
		if err := b.Submit(an, func(r bundler.Report, err error) { a.bundled(&an, r, err) }); err != nil {
			a.bundled(&an, bundler.Report{}, err)
		}
	}
}

// bundled reports a bundle's outcome: in the log, and as spans under the anomaly's
// span plus a log record, over OTLP.
func (a *Agent) bundled(an *anomaly.Anomaly, r bundler.Report, err error) {
	if err != nil {
		a.log.Error("bundle not written", "type", an.Type, "rule", an.Rule, "err", err)
	} else {
		a.log.Info("bundle written", "path", r.Path, "bytes", r.Bytes, "actions", len(r.Actions))
	}
	ctx := context.Background()
	if err := a.sinks.ExportTraces(ctx, bundler.Traces(a.res, an, r, err)); err != nil {
		a.log.Warn("bundle spans not exported", "err", err)
	}
	if err := a.sinks.ExportLogs(ctx, bundler.Logs(a.res, an, r, err)); err != nil {
		a.log.Warn("bundle record not exported", "err", err)
	}
}

// exportMetrics adds the agent's own counters to each collection and exports it.
func (a *Agent) exportMetrics(ctx context.Context, exp, explicit pmetric.Metrics) error {
	now := time.Now()
	// Half a refresh of slack absorbs the ticker's jitter.
	if !a.stopping.Load() && now.Sub(a.lastOTLP) < a.otlpEvery-promRefresh/2 {
		exp = pmetric.NewMetrics()
	} else {
		a.lastOTLP = now
	}
	a.mu.Lock()
	stats := a.bundler.Stats()
	a.mu.Unlock()
	for _, md := range []pmetric.Metrics{exp, explicit} {
		if md.ResourceMetrics().Len() == 0 {
			continue
		}
		a.counter.Metrics(a.res, now).ResourceMetrics().MoveAndAppendTo(md.ResourceMetrics())
		bundler.Metrics(stats, a.res, now).ResourceMetrics().MoveAndAppendTo(md.ResourceMetrics())
	}
	return a.sinks.ExportMetrics(ctx, exp, explicit)
}

func (a *Agent) inflight(ctx context.Context) ([]bpf.InFlightRequest, error) {
	k := a.recv.Kernel()
	if k == nil {
		return nil, errors.New("kernel probes are not loaded")
	}
	return k.InFlight(nil)
}

func (a *Agent) record(e *event.Event) control.Record {
	n, _ := a.recv.Names().Lookup(e.SessionID, e.TreeID)
	return control.NewRecord(e, a.clock.Time(e.EndNs), n.Server, n.Share)
}
