//go:build linux

package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/cifsproc"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/nfsproc"
	"github.com/linuxdiag/aod/internal/otelconv"
	"github.com/linuxdiag/aod/internal/podattr"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/ringreader"
	"github.com/linuxdiag/aod/internal/smb"
	"github.com/linuxdiag/aod/internal/wallclock"
)

// Kernel is what the receiver reads from the probes, and what its owner changes while
// they run; *bpf.Probes implements it.
type Kernel interface {
	NewReader() (*ringbuf.Reader, error)
	SetThresholds(t *[smb.NumCommands]bpf.Threshold) error
	SetErrorFilter(f bpf.ErrorFilter) error
	Histograms(dst []bpf.HistogramSample) ([]bpf.HistogramSample, error)
	Errors(dst []bpf.ErrorSample) ([]bpf.ErrorSample, error)
	Counters() (bpf.Counters, error)
	InFlight(dst []bpf.InFlightRequest) ([]bpf.InFlightRequest, error)
	SweepStale(maxAge time.Duration) (int, error)
	PruneSessions(keep func(sessionID uint64) bool) (int, error)
}

// Config tunes the receiver. Zero fields take the defaults.
type Config struct {
	// CollectionInterval is how often the histograms, counters and /proc/fs/cifs/Stats
	// are read into metrics (default 10s).
	CollectionInterval time.Duration
	// Exponential and Explicit select the forms of smb.client.operation.duration built
	// for Consumers.Metrics; neither set means Exponential only.
	Exponential, Explicit bool
	// Reader sizes the ring buffer reader's batches and queue; its FlushInterval bounds
	// how long an event waits before it is handed on (default 100ms).
	Reader ringreader.Config
	// StaleAge is how long a request may stay in flight before it is taken for one that
	// will never complete and removed, counted as aged out (default 5m).
	StaleAge time.Duration
	// NamesInterval is the least time between two reads of /proc/fs/cifs/DebugData
	// prompted by unknown (session, tree) ids (default 1s).
	NamesInterval time.Duration
	// PruneInterval is how often the histograms and error counts of sessions that left
	// DebugData are deleted from the kernel maps, so that reconnects do not fill them
	// (default 1m).
	PruneInterval time.Duration
	// MountStats is the file the NFS mounts' counters are read from at each collection
	// (default /proc/self/mountstats: the mounts of the receiver's mount namespace).
	MountStats string
	// MountInfo is the mount table the io probe's scope and names come from (default
	// /proc/self/mountinfo), re-read at each collection.
	MountInfo string
	// ProcDir is where the cifs module's files are (default /proc/fs/cifs).
	ProcDir string
	// CardinalityLimit bounds each request metric's series (otelconv's
	// Metrics.SetCardinalityLimit); 0: no limit.
	CardinalityLimit int
	// CollectAtStart makes Start take a first collection before it returns, so a
	// Prometheus endpoint has the metrics from its first scrape, not one interval
	// later.
	CollectAtStart bool
	// Workloads says where the cgroup tree and kubelet's log folders are, to name the
	// pod, container or systemd unit of each request's issuer (zero: the host's).
	Workloads podattr.Options
	// MetricWorkloads makes the SMB request metrics per workload too: the probes it
	// loads count per issuer cgroup (a caller's Kernel must be set so itself:
	// bpf.Probes.SetPerCgroup) and the series name its pod and container, container or
	// systemd unit.
	MetricWorkloads bool
}

func (c Config) withDefaults() Config {
	if c.CollectionInterval <= 0 {
		c.CollectionInterval = DefaultCollectionInterval
	}
	if !c.Exponential && !c.Explicit {
		c.Exponential = true
	}
	if c.StaleAge <= 0 {
		c.StaleAge = DefaultStaleAge
	}
	if c.NamesInterval <= 0 {
		c.NamesInterval = DefaultNamesInterval
	}
	if c.PruneInterval <= 0 {
		c.PruneInterval = DefaultPruneInterval
	}
	if c.ProcDir == "" {
		c.ProcDir = DefaultProcDir
	}
	if c.MountStats == "" {
		c.MountStats = DefaultMountStats
	}
	if c.MountInfo == "" {
		c.MountInfo = DefaultMountInfo
	}
	return c
}

// ProbeConfig configures the probes the receiver loads itself (Settings.Kernel nil).
type ProbeConfig struct {
	Options bpf.Options
	// Thresholds are the per-command slow-request rules, indexed by SMB2 command code;
	// nil tracks every command from 0 (every request is slow: only for tests).
	Thresholds *[smb.NumCommands]bpf.Threshold
	// Errors selects the failures that become events.
	Errors bpf.ErrorFilter
	// NFS configures the NFS client probes, loaded onto the same ring.
	NFS NFSProbeConfig
	// IO configures the io probe (failed file operations), loaded onto the same ring.
	IO IOProbeConfig
}

// Settings are what New needs besides the consumers.
type Settings struct {
	Config Config
	// Kernel, if set, are probes the caller loaded just before Start (their counters
	// are taken to start at Start), and attaches and closes itself. If nil, Start loads probes as Probes says, attaches them in the background
	// (waiting for the cifs module if need be) and Shutdown closes them.
	Kernel Kernel
	// NFS, if set with Kernel, are NFS probes the caller loaded onto Kernel's ring
	// (Probes.LoadNFS) and attaches and closes itself; with Kernel but without NFS, no
	// NFS RPC is measured. With Kernel nil, Start loads them as Probes.NFS says.
	NFS NFSKernel
	// IO, if set with Kernel, is an io probe the caller loaded onto Kernel's ring
	// (Probes.LoadIO), attached and closes itself; the receiver sets its scope from
	// the mount table. With Kernel nil, Start loads it as Probes.IO says.
	IO     IOKernel
	Probes ProbeConfig
	Logger *slog.Logger
	// Version is the instrumentation scope version on everything emitted.
	Version string
	// OnAttach, if set, is told the outcome of attaching the probes the receiver loaded:
	// the report, and an error if the required tracepoints could not be attached.
	OnAttach func(bpf.AttachReport, error)
}

// Consumers receive what the receiver produces. Each may be nil. They are called from
// the receiver's goroutines, one call at a time per callback; a slow Events or Logs
// consumer makes the receiver drop (and count) events rather than wait.
type Consumers struct {
	// Metrics receives every collection: exp has smb.client.operation.duration as an
	// exponential histogram, explicit as a classic one; a form not selected in Config
	// is an empty pmetric.Metrics. All other metrics are in both.
	Metrics func(ctx context.Context, exp, explicit pmetric.Metrics) error
	// Logs receives one log record per event.
	Logs func(ctx context.Context, ld plog.Logs) error
	// Events receives the decoded events (for the detectors), before Logs, without a
	// pdata round trip. It must not keep the slice after returning.
	Events func(batch []event.Event)
}

// Receiver is one running instance. Create it with New, then Start and Shutdown once.
type Receiver struct {
	cfg  Config
	set  Settings
	cons Consumers
	log  *slog.Logger

	names     *cifsproc.ShareNames
	clients   *nfsproc.Clients
	workloads *podattr.Resolver
	clock     *wallclock.Converter

	mu       sync.Mutex
	started  bool
	stopped  bool
	kernel   Kernel
	nfs      NFSKernel   // nil: NFS is not measured
	nfsEnds  atomic.Bool // the NFS programs report how each connection ends
	owned    *bpf.Probes // loaded by Start; closed by Shutdown
	ownedNFS *bpf.NFSProbes
	io       IOKernel // nil: failed file operations are not watched
	ownedIO  *bpf.IOProbes
	ioMounts ioMounts
	reader   *ringreader.Reader
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	metrics  *otelconv.Metrics
	snapshot snapshotState

	hooksMu  sync.Mutex
	smbHooks []bpf.HookStatus // the last attach of the SMB programs, nil before it
	nfsHooks []bpf.HookStatus // the last attach (or failed load) of the NFS programs
}

// Hooks returns the hooks of the programs the receiver loaded, SMB's then NFS's, with
// whether each is attached and why not: on older kernels some tracepoints are missing
// or have other arguments (5.10: no smb3_connect_*, no BTF for the NFS programs). Empty
// until the programs were attached (cifs and sunrpc loaded) or failed to load.
func (r *Receiver) Hooks() []bpf.HookStatus {
	r.hooksMu.Lock()
	defer r.hooksMu.Unlock()
	return slices.Concat(r.smbHooks, r.nfsHooks)
}

func (r *Receiver) setHooks(dst *[]bpf.HookStatus, hooks []bpf.HookStatus) {
	r.hooksMu.Lock()
	*dst = hooks
	r.hooksMu.Unlock()
}

// New checks the settings and prepares a receiver; nothing touches the kernel until
// Start.
func New(set Settings, cons Consumers) (*Receiver, error) {
	cfg := set.Config.withDefaults()
	if cfg.Reader.FlushInterval > 200*time.Millisecond {
		return nil, fmt.Errorf("reader flush interval %v: events must reach user space within 200ms", cfg.Reader.FlushInterval)
	}
	log := set.Logger
	if log == nil {
		log = slog.Default()
	}
	r := &Receiver{cfg: cfg, set: set, cons: cons, log: log}
	r.names = cifsproc.NewShareNames(r.readProc("DebugData"), cfg.NamesInterval)
	r.clients = nfsproc.NewClients()
	r.workloads = podattr.New(cfg.Workloads)
	return r, nil
}

// Workloads names the cgroups of requests' issuers (event.Event.CgroupID), the same
// way the receiver names them on its records.
func (r *Receiver) Workloads() *podattr.Resolver { return r.workloads }

// Names resolves SMB (session id, tree id) pairs to share and server names, the same
// way the receiver names them; detectors use it to name what they report.
func (r *Receiver) Names() *cifsproc.ShareNames { return r.names }

// Resolver names the share and server of any protocol's ids, as the receiver's
// metrics and records do.
func (r *Receiver) Resolver() otelconv.Resolver { return resolver{r.names, r.clients, &r.ioMounts} }

// resolver names each protocol's ids from that protocol's source: SMB's (session,
// tree) from /proc/fs/cifs/DebugData, NFS's RPC client from the mount whose
// mountstats counters grew as the client's RPCs did (nfsproc.Clients), io's mount id
// from /proc/self/mountinfo (its file system type and mount point). SMB's ids are
// never looked up for another protocol, whose ids would only make cifsproc re-read
// DebugData in vain.
type resolver struct {
	smb *cifsproc.ShareNames
	nfs *nfsproc.Clients
	io  *ioMounts
}

func (n resolver) Lookup(p proto.Protocol, sessionID uint64, treeID uint32) (cifsproc.Name, bool) {
	switch p {
	case proto.SMB:
		return n.smb.Lookup(sessionID, treeID)
	case proto.NFS:
		m, ok := n.nfs.Lookup(sessionID)
		return cifsproc.Name{Server: m.Server, Share: m.Export}, ok
	case proto.IO:
		return n.io.lookup(uint32(sessionID), treeID)
	}
	return cifsproc.Name{}, false
}

// Kernel returns the probes in use (nil before Start), for live changes of thresholds
// and error filters, e.g. on a configuration reload.
func (r *Receiver) Kernel() Kernel {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.kernel
}

// IO returns the io probe in use (nil before Start, or when failed file operations are
// not watched), for live changes of its error filter.
func (r *Receiver) IO() IOKernel {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.io
}

// NFS returns the NFS probes in use (nil before Start, or when NFS is not measured),
// for live changes of thresholds and error filters.
func (r *Receiver) NFS() NFSKernel {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nfs
}

// NFSReportsEnds tells whether the NFS programs are attached with the tracepoints
// that report how each connection to the server ends (detector.Env.KernelEnds).
func (r *Receiver) NFSReportsEnds() bool { return r.nfsEnds.Load() }

// Start loads the probes (unless Settings.Kernel was given), opens the ring buffer and
// starts the reading and collecting goroutines. The probes are attached in the
// background: Start does not wait for the cifs module.
func (r *Receiver) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.stopped {
		return errors.New("ingest: Start called twice, or after Shutdown")
	}

	kernel, nfs := r.set.Kernel, r.set.NFS
	if kernel == nil {
		p, err := r.loadProbes()
		if err != nil {
			return err
		}
		r.owned, kernel = p, p
		if n := r.loadNFS(p); n != nil {
			r.ownedNFS, nfs = n, n
		}
		r.ownedIO = r.loadIO(p)
	} else if r.set.IO != nil {
		r.io = r.set.IO
		if err := r.refreshIOScope(); err != nil {
			r.log.Warn("io scope not set", "error", err)
		}
	}
	rd, err := kernel.NewReader()
	if err != nil {
		return errors.Join(fmt.Errorf("ingest: open the event ring: %w", err), r.closeOwned())
	}
	r.kernel, r.nfs, r.started = kernel, nfs, true
	start := time.Now()
	r.clock = wallclock.New(time.Minute)
	r.metrics = otelconv.NewMetrics(r.Resolver(), start, wallclock.BootTime(), r.set.Version)
	r.metrics.SetCardinalityLimit(r.cfg.CardinalityLimit)
	if r.cfg.MetricWorkloads {
		r.metrics.SetWorkloads(r.workloads)
	}
	r.reader = ringreader.New(rd, bpf.DecodeEvent, r.cfg.Reader)
	if r.cfg.CollectAtStart {
		r.collect(ctx, start)
	}

	// The goroutines outlive Start's ctx, which only bounds starting.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	r.wg.Add(3)
	go func() {
		defer r.wg.Done()
		if err := r.reader.Run(); err != nil {
			r.log.Error("event ring reader stopped", "error", err)
		}
	}()
	go func() {
		defer r.wg.Done()
		// Not runCtx: the events read before Shutdown are still delivered.
		r.deliver(context.WithoutCancel(ctx))
	}()
	go func() {
		defer r.wg.Done()
		r.collectLoop(runCtx)
	}()
	if r.owned != nil {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.attach(runCtx)
		}()
	}
	if r.ownedNFS != nil {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.attachNFS(runCtx, r.ownedNFS)
		}()
	}
	return nil
}

func (r *Receiver) loadProbes() (*bpf.Probes, error) {
	opts := r.set.Probes.Options
	if opts.Logger == nil {
		opts.Logger = r.log
	}
	p, err := bpf.Load(opts)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	thresholds := r.set.Probes.Thresholds
	if thresholds == nil {
		thresholds = &[smb.NumCommands]bpf.Threshold{}
		for i := range thresholds {
			thresholds[i] = bpf.Threshold{Tracked: true}
		}
	}
	err = errors.Join(p.SetThresholds(thresholds), p.SetErrorFilter(r.set.Probes.Errors), p.SetPerCgroup(r.cfg.MetricWorkloads))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("ingest: configure probes: %w", err), p.Close())
	}
	return p, nil
}

func (r *Receiver) attach(ctx context.Context) {
	report, err := r.owned.Attach(ctx)
	if ctx.Err() != nil {
		return // shut down while waiting for the cifs module
	}
	if err != nil {
		r.log.Error("SMB request probes not attached: no requests are measured", "error", err)
	}
	r.setHooks(&r.smbHooks, report.Hooks("smb"))
	if r.set.OnAttach != nil {
		r.set.OnAttach(report, err)
	}
}

// deliver hands each batch of events to the Events and Logs consumers.
func (r *Receiver) deliver(ctx context.Context) {
	logs := otelconv.NewLogBuilder(r.Resolver(), r.clock, r.set.Version).WithWorkloads(r.workloads)
	r.reader.Deliver(func(batch []event.Event) {
		r.clock.MaybeRefresh()
		r.issuerCgroups(batch)
		if r.cons.Events != nil {
			r.cons.Events(batch)
		}
		if r.cons.Logs != nil {
			if err := r.cons.Logs(ctx, logs.Build(batch, time.Now())); err != nil {
				r.log.Warn("event records not accepted", "events", len(batch), "error", err)
			}
		}
	})
}

// issuerCgroups fills in the cgroup of requests whose probe could not see it (an NFS
// RPC that rpciod completed for its owner) from the owner's, read now: the owner is
// the process that created the RPC, and it rarely changes cgroup while it waits.
func (r *Receiver) issuerCgroups(batch []event.Event) {
	for i := range batch {
		e := &batch[i]
		if e.CgroupID == 0 && e.Tgid != 0 && (e.Kind == event.KindSlow || e.Kind == event.KindError) {
			e.CgroupID = r.workloads.CgroupOf(e.Tgid)
		}
	}
}

// Shutdown stops reading, hands the events already read to the consumers and closes
// the probes it loaded. It waits for that at most until ctx is done.
func (r *Receiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	if !r.started || r.stopped {
		r.stopped = true
		r.mu.Unlock()
		return nil
	}
	r.stopped = true
	r.mu.Unlock()

	r.cancel()
	// Read what the kernel put in the ring before stopping; the source is closed once
	// the reader has returned (or if the wait is cut short).
	err := r.reader.Drain()
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		err = errors.Join(err, r.reader.Close())
	case <-ctx.Done():
		return errors.Join(err, r.reader.Close(), fmt.Errorf("ingest: shutdown: %w", ctx.Err()))
	}
	// One last collection, so that what was measured since the previous one is not
	// lost with the process.
	r.collect(ctx, time.Now())
	r.mu.Lock()
	defer r.mu.Unlock()
	return errors.Join(err, r.closeOwned())
}

func (r *Receiver) closeOwned() error {
	var err error
	if r.ownedIO != nil {
		err = r.ownedIO.Close()
		r.ownedIO, r.io = nil, nil
	}
	if r.ownedNFS != nil {
		err = errors.Join(err, r.ownedNFS.Close())
		r.ownedNFS = nil
	}
	if r.owned != nil {
		err = errors.Join(err, r.owned.Close())
		r.owned = nil
	}
	return err
}
