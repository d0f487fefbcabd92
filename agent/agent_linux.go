package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
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
	"github.com/linuxdiag/aod/internal/nfsproc"
	"github.com/linuxdiag/aod/internal/pidlock"
	"github.com/linuxdiag/aod/internal/podattr"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/smb"
	"github.com/linuxdiag/aod/internal/telemetry"
	"github.com/linuxdiag/aod/internal/upload"
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
	// NFS, if set with Kernel, are NFS probes the caller loaded onto Kernel and
	// attached (tests).
	NFS ingest.NFSKernel
	// IO, if set with Kernel, is an io probe the caller loaded onto Kernel and
	// attached (tests); the receiver scopes it.
	IO ingest.IOKernel
	// ProcDir overrides /proc/fs/cifs (tests).
	ProcDir string
	// MountStats overrides /proc/self/mountstats, the NFS mounts' counters (tests).
	MountStats string
	// Actions replace the built-in actions of the same name (tests).
	Actions actions.Table
	// Workloads overrides where the cgroup tree and kubelet's log folders are read
	// (tests); the configuration's workloads section otherwise.
	Workloads *podattr.Options
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
	up      *upload.Uploader // nil: upload off
	upRep   *upload.Reporter // with up: exports the upload records
	counter *anomalypdata.Counter
	reloads reloadCounter

	// reloading makes reloads one at a time; lock is the output folder's lock, which
	// a reload moves when the folder changes.
	reloading sync.Mutex
	lock      *pidlock.Lock

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
	now := time.Now()
	a := &Agent{log: o.Logger, opts: o, cfg: cfg, clock: wallclock.New(time.Minute),
		counter: anomalypdata.NewCounter(now), reloads: reloadCounter{start: now}}
	a.res = resource()
	attrs := map[string]string{}
	a.res.Attributes().Range(func(k string, v pcommon.Value) bool { attrs[k] = v.AsString(); return true })

	var err error
	a.sinks, err = telemetry.New(context.Background(), sinkOptions(cfg, attrs, o.Logger))
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	f := filtersOf(cfg)
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
		MountStats:         o.MountStats,
		CardinalityLimit:   cfg.Telemetry.CardinalityLimit,
		// The endpoint serves current values from the first scrape.
		CollectAtStart:  true,
		Workloads:       o.workloads(cfg),
		MetricWorkloads: cfg.Workloads.MetricAttributes,
	}
	a.recv, err = ingest.New(ingest.Settings{
		Config: rc,
		Kernel: o.Kernel,
		NFS:    o.NFS,
		IO:     o.IO,
		Probes: ingest.ProbeConfig{Thresholds: f.smbTh, Errors: f.smbEf,
			NFS: ingest.NFSProbeConfig{Thresholds: f.nfsTh, Errors: f.nfsEf},
			IO:  ingest.IOProbeConfig{FileSystems: ioFileSystems(cfg), Errors: f.ioEf}},
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
	// The uploader outlives reloads: its journal and queue belong to the output
	// folder, and a changed upload: section takes effect at the next start.
	if uo, on, err := upload.FromConfig(context.Background(), cfg, o.Logger); err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	} else if on {
		a.upRep = upload.NewReporter(a.uploaded, o.Logger)
		uo.OnOutcome = a.upRep.Record
		if a.up, err = upload.New(uo); err != nil {
			a.upRep.Close()
			return nil, fmt.Errorf("upload: %w", err)
		}
	}
	st, err := a.prepare(cfg, nil)
	if err != nil {
		return nil, err
	}
	a.declare(st)
	a.cfg, a.det, a.bundler = cfg, st.det, st.bundler
	return a, nil
}

// staged is what a configuration needs, built but not yet in force.
type staged struct {
	det     detector.Sets
	bundler *bundler.Bundler
	filters filterSet
}

// prepare builds the detectors, the bundler (taking over from prev, if not nil) and
// the kernel filters for cfg. It changes nothing of the running agent.
func (a *Agent) prepare(cfg *config.Config, prev *bundler.Bundler) (*staged, error) {
	det, err := detector.NewSets(cfg, func(p proto.Protocol) detector.Env {
		env := detector.Env{Clock: detector.SystemClock{Converter: a.clock}, Workload: a.recv.Workloads().Lookup}
		switch p { // the receiver resolves cifs (session, tree) ids and RPC clients
		case proto.SMB:
			env.Share = detector.SharesFrom(a.recv.Names().Lookup)
		case proto.NFS:
			r := a.recv.Resolver()
			env.Share = func(client uint64, _ uint32) string {
				n, _ := r.Lookup(proto.NFS, client, 0)
				return nfsproc.JoinDevice(n.Server, n.Share)
			}
			env.KernelEnds = a.recv.NFSReportsEnds
		case proto.IO: // the mount point
			r := a.recv.Resolver()
			env.Share = func(mount uint64, magic uint32) string {
				n, _ := r.Lookup(proto.IO, mount, magic)
				return n.Share
			}
		}
		return env
	})
	if err != nil {
		return nil, fmt.Errorf("detectors: %w", err)
	}
	bo := bundler.FromConfig(cfg)
	bo.Logger = a.log
	bo.Inflight = a.inflight
	bo.Extra = a.opts.Actions
	bo.Previous = prev
	if a.up != nil {
		bo.Upload = a.up
	}
	b, err := bundler.New(bo)
	if err != nil {
		return nil, fmt.Errorf("bundles: %w", err)
	}
	return &staged{det: det, bundler: b, filters: filtersOf(cfg)}, nil
}

// declare exports st's anomaly series from the start, at 0 until they fire.
func (a *Agent) declare(st *staged) {
	for _, k := range st.det.Keys() {
		a.counter.Declare(k)
	}
}

// Start takes the output folder's lock (one agent per host), then starts the control
// socket, the exporters, the bundler and the receiver (which attaches the probes in
// the background, waiting for the cifs module if needed).
func (a *Agent) Start(ctx context.Context) error {
	if err := a.bundler.Check(); err != nil {
		return outputDirError(a.cfg.OutputDir, err)
	}
	lock, err := pidlock.Acquire(a.cfg.OutputDir)
	if err != nil {
		return err
	}
	a.lock = lock
	// The control socket exists before the first event arrives: onEvents reads a.ctl
	// without a lock.
	if a.opts.ControlSocket != "" {
		ctl, err := control.Listen(a.opts.ControlSocket, a.snapshot, a.log)
		switch {
		case errors.Is(err, control.ErrAgentRunning):
			return err
		case err != nil:
			// The agent still works without its control socket; say why aod top won't.
			a.log.Warn("control socket unavailable: aod top and aod snapshot cannot reach this agent", "err", err)
		default:
			a.ctl = ctl
			ctl.SetHooks(a.recv.Hooks)
			if a.up != nil {
				ctl.SetUploadStatus(a.up.Status)
			}
		}
	}
	if err := a.sinks.Start(ctx); err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	if err := a.bundler.Start(); err != nil {
		return fmt.Errorf("bundles: %w", err)
	}
	if a.up != nil {
		a.up.Start()
	}
	if err := a.recv.Start(ctx); err != nil {
		return fmt.Errorf("receiver: %w", err)
	}
	if a.opts.Kernel != nil {
		// Probes the caller loaded start with nothing tracked.
		if err := a.setFilters(filtersOf(a.cfg)); err != nil {
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
	if a.up != nil {
		// Uploads in progress are cut off here and resumed at the next start.
		errs = append(errs, a.up.Shutdown(ctx))
		a.upRep.Close()
	}
	errs = append(errs, a.sinks.Shutdown(ctx))
	a.reloading.Lock() // a reload may move the lock
	if a.lock != nil {
		errs = append(errs, a.lock.Release())
	}
	a.reloading.Unlock()
	return errors.Join(errs...)
}

// shutdownDump writes the bundle of the stopping agent, if the configuration wants
// one. Its failure is logged: it must not stop the rest of the shutdown.
func (a *Agent) shutdownDump(ctx context.Context) {
	a.mu.Lock()
	b, on := a.bundler, a.cfg.Bundle.ShutdownDump
	a.mu.Unlock()
	// An agent whose Start failed never ran, and may have been refused the output
	// folder another agent owns: it has nothing to dump there.
	if !on || a.pollStop == nil {
		return
	}
	rep, err := b.ShutdownDump(ctx)
	if err != nil {
		a.log.Error("shutdown bundle not written", "err", err)
		return
	}
	a.log.Info("shutdown bundle written", "path", rep.Path, "bytes", rep.Bytes, "actions", len(rep.Actions))
}

// Reload applies a new configuration, all or nothing: the detectors, the bundler and
// the kernel filters are built and checked first (the output folder must be usable,
// and lockable when it changes), then swapped in, and what they replace is stopped
// last. A reload that fails leaves everything as it was; either way it is counted
// (aod.config.reloads). Settings that need a restart (telemetry destinations, ring
// sizes) are reported, not applied.
func (a *Agent) Reload(ctx context.Context, cfg *config.Config) error {
	err := a.reload(ctx, cfg)
	a.reloads.count(err == nil)
	return err
}

// ReloadRejected counts a reload whose file was refused before it reached Reload.
func (a *Agent) ReloadRejected() { a.reloads.count(false) }

func (a *Agent) reload(ctx context.Context, cfg *config.Config) error {
	a.reloading.Lock()
	defer a.reloading.Unlock()
	a.mu.Lock()
	old, oldBundler := a.cfg, a.bundler
	a.mu.Unlock()
	if cfg.Telemetry.OTLP.Endpoint != old.Telemetry.OTLP.Endpoint || cfg.Telemetry.Prometheus.Listen != old.Telemetry.Prometheus.Listen {
		a.log.Warn("telemetry destinations changed: they take effect when aod restarts")
	}
	if cfg.Telemetry.CardinalityLimit != old.Telemetry.CardinalityLimit {
		a.log.Warn("telemetry.cardinality_limit changed: it takes effect when aod restarts")
	}
	if cfg.Workloads != old.Workloads {
		a.log.Warn("workloads settings changed: they take effect when aod restarts")
	}
	if !reflect.DeepEqual(cfg.Upload, old.Upload) || (a.up != nil && cfg.OutputDir != old.OutputDir) {
		a.log.Warn("upload settings (or the output folder being uploaded) changed: they take effect when aod restarts")
	}
	st, err := a.prepare(cfg, oldBundler)
	if err != nil {
		return err
	}
	if err := st.bundler.Check(); err != nil {
		return outputDirError(cfg.OutputDir, err)
	}
	lock := a.lock
	if cfg.OutputDir != old.OutputDir {
		if lock, err = pidlock.Acquire(cfg.OutputDir); err != nil {
			return err
		}
	}
	if err := a.setFilters(st.filters); err != nil {
		// Any map may have been written: put the running configuration's back.
		if rerr := a.setFilters(filtersOf(old)); rerr != nil {
			err = errors.Join(err, fmt.Errorf("restoring the running filters: %w", rerr))
		}
		if lock != a.lock {
			lock.Release()
		}
		return err
	}
	// Nothing fails from here on.
	a.declare(st)
	a.mu.Lock()
	a.cfg, a.det, a.bundler = cfg, st.det, st.bundler
	a.mu.Unlock()
	// The old bundler finishes what it started and its captures stop before the new
	// one's start; captures that did not change keep running.
	if err := st.bundler.Replace(ctx); err != nil {
		a.log.Warn("previous bundler did not stop cleanly", "err", err)
	}
	if lock != a.lock {
		a.lock.Release()
		a.lock = lock
	}
	logPlan(cfg, a.log)
	return nil
}

// setFilters writes thresholds and the error filters into the kernel maps of every
// protocol's probes.
func (a *Agent) setFilters(f filterSet) error {
	k, ok := a.recv.Kernel().(interface {
		SetThresholds(*[smb.NumCommands]bpf.Threshold) error
		SetErrorFilter(bpf.ErrorFilter) error
	})
	if !ok {
		return nil // not loaded yet: the receiver loads them with cfg's filters
	}
	if err := k.SetThresholds(f.smbTh); err != nil {
		return fmt.Errorf("kernel thresholds: %w", err)
	}
	if err := k.SetErrorFilter(f.smbEf); err != nil {
		return fmt.Errorf("kernel error filter: %w", err)
	}
	if n := a.recv.NFS(); n != nil {
		if err := n.SetThresholds(f.nfsTh); err != nil {
			return fmt.Errorf("NFS kernel thresholds: %w", err)
		}
		if err := n.SetErrorFilter(f.nfsEf); err != nil {
			return fmt.Errorf("NFS kernel error filter: %w", err)
		}
	}
	if io := a.recv.IO(); io != nil {
		if err := io.SetErrorFilter(f.ioEf); err != nil {
			return fmt.Errorf("io kernel error filter: %w", err)
		}
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
	poll := func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		var err error
		found, err = a.det.Poll(found[:0])
		if err != nil {
			a.log.Warn("connection poll failed", "err", err)
		}
		if len(found) > 0 {
			a.handle(a.bundler, found)
		}
	}
	// The first poll only records the connections, at start: a connection lost within
	// the first interval is then seen at the next poll. On kernels without the
	// connection tracepoints (5.10) the polls are all the detector has.
	poll()
	for {
		select {
		case <-a.pollStop:
			return
		case <-t.C:
		}
		poll()
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

// uploaded exports an upload's outcome over OTLP, as a span under the anomaly's
// span and a log record naming it, with the bundle's path and the object's URL.
func (a *Agent) uploaded(o upload.Outcome) {
	ctx, now := context.Background(), time.Now()
	if err := a.sinks.ExportTraces(ctx, upload.Traces(a.res, o, now)); err != nil {
		a.log.Warn("upload span not exported", "err", err)
	}
	if err := a.sinks.ExportLogs(ctx, upload.Logs(a.res, o, now)); err != nil {
		a.log.Warn("upload record not exported", "err", err)
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
		bm := bundler.Metrics(stats, a.res, now)
		if a.up != nil {
			upload.AppendMetrics(bm.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics(), a.up.Stats(), now)
		}
		bm.ResourceMetrics().MoveAndAppendTo(md.ResourceMetrics())
		a.reloads.metrics(a.res, now).ResourceMetrics().MoveAndAppendTo(md.ResourceMetrics())
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
	n, _ := a.recv.Resolver().Lookup(e.Protocol, e.SessionID, e.TreeID)
	return control.NewRecord(e, a.clock.Time(e.EndNs), n.Server, n.Share)
}

// workloads says where the receiver reads the cgroup tree and kubelet's log folders:
// the configuration's workloads section, or the test's places. A change takes effect
// at the next start.
func (o Options) workloads(cfg *config.Config) podattr.Options {
	if o.Workloads != nil {
		return *o.Workloads
	}
	w := cfg.Workloads
	return podattr.Options{CgroupRoot: w.CgroupRoot, PodLogDir: w.PodLogDir, ContainerLogDir: w.ContainerLogDir}
}
