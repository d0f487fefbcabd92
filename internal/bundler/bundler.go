// Package bundler turns an anomaly into a diagnostic bundle: it runs the anomaly's
// quick actions and capture snapshots (bounded in number, time and size), streams
// their output into an atomically written tar.zst file with a manifest, and keeps the
// captures and the retention of old bundles running beside. It is what the agent and
// the collector's aodbundle connector both call.
//
// A bundle <aod_output_dir>/batches/aod_quick_<unix-nanos>_<protocol>_<type>.tar.zst
// extracts (tar --zstd -xf) to one directory of the same name holding, in the order
// the actions finished:
//
//	events.jsonl      the triggering requests, one JSON object per line
//	inflight.jsonl    requests outstanding in the kernel, longest first
//	sockets.txt       TCP sockets on the protocol's server port, 445 for SMB (ss -tinpem,
//	                  or /proc/net/tcp rows)
//	cifs_params.txt   /sys/module/cifs/parameters
//	dmesg.log journalctl.log syslogs.log debug_data.log cifsstats.log mounts.log smbinfo.log
//	                  AODv2's quick actions, under AODv2's names
//	tcpdump/<protocol>.pcapNN  trace-cmd/trace.dat
//	manifest.json     last: the anomaly, host, agent, window, limits and one entry
//	                  per action (status, exit code, duration, bytes, error, skip reason)
//
// An action whose source is missing leaves no file and a "skipped" entry.
package bundler

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linuxdiag/aod/internal/actions"
	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/archive"
	"github.com/linuxdiag/aod/internal/capture"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/mountinfo"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/retention"
)

// SnapshotProtocol is the protocol field of an on-demand snapshot's and of the
// shutdown dump's bundle names: aod_quick_<ts>_aod_snapshot.tar.zst,
// aod_quick_<ts>_aod_shutdown.tar.zst (AODv2's names).
const SnapshotProtocol = "aod"

// DefaultMaxPending is MaxPending when zero. The other zero Options fields take the
// defaults of aod's configuration (config.Defaults), so that the agent, the collector
// connector and a caller leaving a field out all get the same value.
const DefaultMaxPending = 4

// minBudget is the least free space (beyond the floor) a bundle needs to be worth
// starting: below it the bundle is skipped rather than written nearly empty.
const minBudget = 1 << 20

// Key selects the actions of one kind of anomaly.
type Key struct {
	Protocol string // "smb"
	Type     string // anomaly.TypeLatency, ...
}

// Options configure a Bundler. Zero values take the defaults above.
type Options struct {
	// OutputDir is aod_output_dir; bundles go to its batches subdirectory.
	OutputDir string
	// Actions lists, per protocol and anomaly type, the configured action names
	// (quick actions and capture tools). actions.Always of the anomaly's protocol are added to every bundle.
	Actions map[Key][]string
	// Captures are the long-running captures, at most one per protocol and tool.
	Captures []capture.Spec
	// Capture tunes capture supervision; its Dir defaults to <OutputDir>/captures
	// and its Logger to Logger.
	Capture capture.Options

	ActionTimeout  time.Duration // per action; it is killed after it
	Lookback       time.Duration // reach of the time-filtered actions before the anomaly
	MaxActionBytes int64         // output kept per action
	Concurrency    int           // actions running at once, across all bundles
	MaxPending     int           // bundles in progress at once; more are skipped
	ZstdLevel      int           // 1..22

	CleanupInterval time.Duration // cleanup_interval_sec
	MaxAge          time.Duration // max_log_age_days; 0 keeps bundles forever
	MaxTotalBytes   int64         // max_total_log_size_mb in bytes; 0: no limit
	// MinFreeBytes is the free-space floor of the output filesystem: bundles are
	// shrunk to stay above it, and skipped when they cannot.
	MinFreeBytes int64

	// Inflight reads the kernel's in-flight requests for the inflight action; nil
	// records that action as skipped.
	Inflight actions.InflightFunc
	// Extra adds actions to the built-in table or replaces built-ins of the same
	// name.
	Extra actions.Table
	// LookPath overrides how actions find programs (tests).
	LookPath func(string) (string, error)
	Logger   *slog.Logger

	// Upload, if set, is told of every bundle written (its path), and decides which
	// bundles retention must keep for it (see retention.Options.Hold).
	Upload Uploader

	// Previous is the Bundler this one replaces (a configuration reload), or nil.
	// This one counts on from its counters, and takes over each of its captures that
	// runs exactly what this one would, so the capture's ring is not cleared. Nothing
	// changes for Previous until Replace.
	Previous *Bundler
}

func (o *Options) defaults() {
	d := config.Defaults()
	if o.ActionTimeout <= 0 {
		o.ActionTimeout = d.Collection.Timeout
	}
	if o.Lookback <= 0 {
		o.Lookback = d.Collection.Lookback
	}
	if o.MaxActionBytes <= 0 {
		o.MaxActionBytes = d.Collection.MaxOutput
	}
	if o.Concurrency <= 0 {
		o.Concurrency = d.Collection.Concurrency
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.ZstdLevel == 0 {
		o.ZstdLevel = d.Bundle.ZstdLevel
	}
	if o.CleanupInterval <= 0 {
		o.CleanupInterval = d.Cleanup.Interval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Capture.Dir == "" {
		o.Capture.Dir = filepath.Join(o.OutputDir, "captures")
	}
	if o.Capture.Logger == nil {
		o.Capture.Logger = o.Logger
	}
}

// Uploader is what the bundler needs of internal/upload's Uploader. Notify gets
// the anomaly the bundle was written for, which the upload's records name.
type Uploader interface {
	Notify(path string, a *anomaly.Anomaly)
	Holds(bundle string) bool
	Dropped(bundle, why string)
}

// Errors for a bundle that was not made; both are counted and logged.
var (
	ErrBusy     = errors.New("bundler: too many bundles in progress; this one is skipped")
	ErrLowSpace = errors.New("bundler: free space is below the floor; bundle skipped")
	ErrClosed   = errors.New("bundler: shut down")
)

// Report describes a bundle that was written.
type Report struct {
	Path     string // final path of the bundle
	Bytes    int64  // its size
	Started  time.Time
	Finished time.Time
	Actions  []actions.Result
}

// Stats count the bundler's work since start, for aod's own metrics (Metrics,
// RegisterMetrics).
type Stats struct {
	Started         time.Time // when the first Bundler of a chain of Previous was made: the counters' start
	Bundles         uint64    // bundles written
	BundleBytes     uint64
	Failed          uint64          // bundles that could not be written
	SkippedBusy     uint64          // skipped: MaxPending bundles already in progress
	SkippedLowSpace uint64          // skipped: below the free-space floor
	Shrunk          uint64          // written with smaller action limits to keep the floor
	Retention       retention.Stats // with the bundles' disk use at the last sweep
	DiskLimit       int64           // MaxTotalBytes; 0: no limit
}

// counters are what Stats reports; a Bundler made to replace another shares them.
type counters struct {
	started                                              time.Time
	bundles, bundleBytes, failed, busy, lowSpace, shrunk atomic.Uint64
	retention                                            *retention.Counters
}

// Bundler makes bundles. Create it with New, Start it (or Replace its Previous with
// it), and Shutdown it.
type Bundler struct {
	o        Options
	log      *slog.Logger
	table    actions.Table
	captures []*capture.Capture
	sweeper  *retention.Sweeper
	slots    chan struct{} // action slots
	pending  chan struct{} // bundle slots
	c        *counters
	prev     *Bundler // Options.Previous until Replace
	// inherited are the captures taken over from prev, running already; kept are
	// this bundler's captures that its successor took over, which Shutdown leaves
	// running.
	inherited, kept map[*capture.Capture]bool

	life context.Context
	end  context.CancelFunc
	mu   sync.Mutex // orders reserve's wg.Add before Shutdown's wg.Wait
	wg   sync.WaitGroup
	// closed is set by Shutdown; sweepDone ends when the retention loop does.
	closed    bool
	sweepDone chan struct{}
	lastNanos atomic.Int64
}

// New checks the options and prepares the bundler. Nothing runs until Start.
func New(o Options) (*Bundler, error) {
	o.defaults()
	if o.OutputDir == "" {
		return nil, errors.New("bundler: output directory is not set")
	}
	if o.ZstdLevel < 1 || o.ZstdLevel > 22 {
		return nil, fmt.Errorf("bundler: zstd level %d out of range 1..22", o.ZstdLevel)
	}
	b := &Bundler{o: o, log: o.Logger.With("component", "bundler"), table: actions.Builtin(),
		slots: make(chan struct{}, o.Concurrency), pending: make(chan struct{}, o.MaxPending),
		c: &counters{started: time.Now(), retention: retention.NewCounters()}, prev: o.Previous,
		inherited: map[*capture.Capture]bool{}}
	b.o.Previous = nil
	if b.prev != nil {
		b.c = b.prev.c
	}
	seen := map[string]string{}
	for _, spec := range o.Captures {
		if p, dup := seen[spec.Tool]; dup {
			return nil, fmt.Errorf("bundler: %s is configured for both %s and %s; one capture per tool", spec.Tool, p, spec.Protocol)
		}
		seen[spec.Tool] = spec.Protocol
		c, err := capture.New(spec, o.Capture)
		if err != nil {
			return nil, fmt.Errorf("bundler: %s capture for %s: %w", spec.Tool, spec.Protocol, err)
		}
		if old := b.prev.runningLike(c); old != nil {
			c = old
			b.inherited[c] = true
		}
		b.captures = append(b.captures, c)
		b.table[spec.Tool] = c.Action()
	}
	for name, a := range o.Extra {
		b.table[name] = a
	}
	for k, names := range o.Actions {
		for _, n := range names {
			if _, ok := b.table[n]; !ok {
				return nil, fmt.Errorf("bundler: %s %s: unknown action %q (known: %s)", k.Protocol, k.Type, n,
					strings.Join(b.table.Names(), ", "))
			}
		}
	}
	ro := retention.Options{OutputDir: o.OutputDir, Interval: o.CleanupInterval,
		MaxAge: o.MaxAge, MaxTotalBytes: o.MaxTotalBytes, Logger: o.Logger, Counters: b.c.retention}
	if o.Upload != nil {
		ro.Hold, ro.Dropped, ro.MinFreeBytes = o.Upload.Holds, o.Upload.Dropped, o.MinFreeBytes
	}
	sw, err := retention.New(ro)
	if err != nil {
		return nil, err
	}
	b.sweeper = sw
	b.life, b.end = context.WithCancel(context.Background())
	return b, nil
}

// runningLike returns b's capture that runs exactly what c would, or nil (also
// when b is nil or the capture gave up).
func (b *Bundler) runningLike(c *capture.Capture) *capture.Capture {
	if b == nil {
		return nil
	}
	for _, old := range b.captures {
		if old.RunsLike(c) && !old.State().Disabled {
			return old
		}
	}
	return nil
}

// Check makes sure bundles can be written: the output directory and its batches
// directory exist (or are created), are aod's own, and accept a new file.
func (b *Bundler) Check() error {
	d, err := archive.OpenDir(b.o.OutputDir)
	if err != nil {
		return err
	}
	defer d.Close()
	f, err := d.Spool()
	if err != nil {
		return err
	}
	return f.Close()
}

// Start checks the output directory, then starts the captures and the retention
// loop. A capture that cannot start is logged and recorded in the bundles; it does
// not stop the agent.
func (b *Bundler) Start() error {
	if err := b.Check(); err != nil {
		return err
	}
	b.launch()
	return nil
}

// Replace puts b in the place of Options.Previous: it shuts Previous down (within
// ctx), leaving running the captures b took over, then starts b's other captures and
// its retention loop. Previous's captures stop before b's start, so two captures
// never write the same files. The caller checked b (Check) before; b starts even
// when Previous did not stop cleanly, whose error is returned.
func (b *Bundler) Replace(ctx context.Context) error {
	var err error
	if old := b.prev; old != nil {
		old.mu.Lock()
		old.kept = b.inherited
		old.mu.Unlock()
		err = old.Shutdown(ctx)
	}
	b.launch()
	b.mu.Lock()
	b.prev, b.inherited = nil, nil
	b.mu.Unlock()
	return err
}

func (b *Bundler) launch() {
	for _, c := range b.captures {
		if b.inherited[c] {
			continue
		}
		if err := c.Start(); err != nil {
			b.log.Error("capture not started", "error", err)
		}
	}
	b.sweepDone = make(chan struct{})
	go func() {
		defer close(b.sweepDone)
		b.sweeper.Run(b.life)
	}()
}

// Shutdown cancels bundles in progress (their running actions are killed and each
// bundle is still completed with what it has), waits for them, and stops the
// captures and the retention loop, all within ctx.
func (b *Bundler) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	// Captures still inherited (b never replaced its Previous) belong to Previous;
	// kept ones to b's successor.
	var stop []*capture.Capture
	for _, c := range b.captures {
		if !b.inherited[c] && !b.kept[c] {
			stop = append(stop, c)
		}
	}
	b.mu.Unlock()
	b.end()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	var errs []error
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("bundler: bundles still in progress: %w", ctx.Err()))
	}
	for _, c := range stop {
		if err := c.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if b.sweepDone != nil {
		select {
		case <-b.sweepDone:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("bundler: retention still running: %w", ctx.Err()))
		}
	}
	return errors.Join(errs...)
}

// Stats returns the counters.
func (b *Bundler) Stats() Stats {
	c := b.c
	return Stats{Started: c.started, DiskLimit: b.o.MaxTotalBytes, Bundles: c.bundles.Load(), BundleBytes: c.bundleBytes.Load(), Failed: c.failed.Load(),
		SkippedBusy: c.busy.Load(), SkippedLowSpace: c.lowSpace.Load(), Shrunk: c.shrunk.Load(),
		Retention: b.sweeper.Stats()}
}

// Captures returns the state of each capture, by "<protocol>/<tool>".
func (b *Bundler) Captures() map[string]capture.State {
	m := make(map[string]capture.State, len(b.captures))
	for _, c := range b.captures {
		m[c.Spec().Protocol+"/"+c.Spec().Tool] = c.State()
	}
	return m
}

// Collect writes the bundle of anomaly a with the actions configured for its
// protocol and type, and returns when the bundle is on disk (or was not made). It
// takes as long as the slowest action, bounded by the action timeout. It returns
// ErrBusy at once when MaxPending bundles are already in progress.
func (b *Bundler) Collect(ctx context.Context, a anomaly.Anomaly) (Report, error) {
	log := b.logFor(&a)
	release, err := b.reserve(log)
	if err != nil {
		return Report{}, err
	}
	defer release()
	return b.collect(ctx, &a, b.actionsFor(&a), log)
}

// Submit starts anomaly a's bundle in the background and returns at once; done, if
// not nil, is called with the outcome. It never waits: with MaxPending bundles in
// progress it returns ErrBusy and starts nothing, so a storm of anomalies costs
// neither memory nor goroutines. Shutdown cancels and waits for submitted bundles.
func (b *Bundler) Submit(a anomaly.Anomaly, done func(Report, error)) error {
	log := b.logFor(&a)
	release, err := b.reserve(log)
	if err != nil {
		return err
	}
	go func() {
		defer release()
		rep, err := b.collect(context.Background(), &a, b.actionsFor(&a), log)
		if done != nil {
			done(rep, err)
		}
	}()
	return nil
}

// Snapshot writes an on-demand bundle, aod_quick_<ts>_aod_snapshot.tar.zst, with
// every action there is (built-in quick actions and every capture's snapshot). This
// is what SIGUSR1 and `aod snapshot` ask for.
func (b *Bundler) Snapshot(ctx context.Context) (Report, error) {
	a := anomaly.Anomaly{Protocol: SnapshotProtocol, Type: anomaly.TypeSnapshot, Rule: "on-demand",
		Reason: "on-demand snapshot", DetectedAt: time.Now()}
	log := b.logFor(&a)
	release, err := b.reserve(log)
	if err != nil {
		return Report{}, err
	}
	defer release()
	return b.collect(ctx, &a, b.table.Names(), log)
}

// ErrNoTime is returned by ShutdownDump when its context leaves it no time to run.
var ErrNoTime = errors.New("bundler: too little of the stop timeout is left for the shutdown dump")

// ShutdownDump writes the bundle of a stopping agent, aod_quick_<ts>_aod_shutdown.tar.zst,
// as AODv2 2026 does on SIGTERM: every configured action (quick actions and capture
// snapshots, once each) and the ones every bundle gets. Call it before Shutdown.
//
// It takes at most half of what is left of ctx, so the rest of the stop keeps the
// other half: an action still running then is cut off (killed, or abandoned if it
// will not stop) and recorded as canceled with that reason, and the bundle is
// written with what the others collected.
func (b *Bundler) ShutdownDump(ctx context.Context) (Report, error) {
	if dl, ok := ctx.Deadline(); ok {
		budget := time.Until(dl)/2 - actions.AbandonGrace
		if budget <= 0 {
			return Report{}, ErrNoTime
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, budget,
			fmt.Errorf("the shutdown dump's share of the stop timeout (%s) ran out", budget.Round(time.Millisecond)))
		defer cancel()
	}
	a := anomaly.Anomaly{Protocol: SnapshotProtocol, Type: anomaly.TypeShutdown, Rule: "shutdown",
		Reason: "aod is stopping", DetectedAt: time.Now()}
	log := b.logFor(&a)
	release, err := b.reserve(log)
	if err != nil {
		return Report{}, err
	}
	defer release()
	return b.collect(ctx, &a, b.configured(), log)
}

// configured lists every configured action once, in protocol and type order, then
// the ones every bundle of each protocol gets.
func (b *Bundler) configured() []string {
	var names []string
	add := func(n string) {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(b.o.Actions), func(x, y Key) int {
		return cmp.Or(cmp.Compare(x.Protocol, y.Protocol), cmp.Compare(x.Type, y.Type))
	}) {
		for _, n := range b.o.Actions[k] {
			add(n)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(actions.Always)) {
		for _, n := range actions.Always[p] {
			add(n)
		}
	}
	return names
}

func (b *Bundler) logFor(a *anomaly.Anomaly) *slog.Logger {
	return b.log.With("protocol", a.Protocol, "type", a.Type, "rule", a.Rule)
}

// actionsFor lists the configured actions of a's protocol and type, then the ones
// every bundle gets.
func (b *Bundler) actionsFor(a *anomaly.Anomaly) []string {
	names := slices.Clone(b.o.Actions[Key{a.Protocol, a.Type}])
	add := func(list []string) {
		for _, n := range list {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	p, _ := proto.ParseProtocol(a.Protocol)
	add(actions.Always[p])
	if p == proto.IO {
		for _, q := range clientsOf(a.Events) {
			add(actions.ForMounts[q])
		}
	}
	return names
}

// clientsOf lists the network file system clients whose mounts io events hit (by the
// super block magic the probe recorded), SMB before NFS.
func clientsOf(events []event.Event) []proto.Protocol {
	var smb, nfs bool
	for i := range events {
		switch mountinfo.TypeOfMagic(events[i].TreeID) {
		case "cifs", "smb3":
			smb = true
		case "nfs":
			nfs = true
		}
	}
	var out []proto.Protocol
	if smb {
		out = append(out, proto.SMB)
	}
	if nfs {
		out = append(out, proto.NFS)
	}
	return out
}

// reserve takes one of the MaxPending bundle slots, or says why not.
func (b *Bundler) reserve(log *slog.Logger) (release func(), err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	select {
	case b.pending <- struct{}{}:
	default:
		b.c.busy.Add(1)
		log.Warn("bundle skipped: too many in progress", "max_pending", b.o.MaxPending)
		return nil, ErrBusy
	}
	b.wg.Add(1)
	return func() {
		<-b.pending
		b.wg.Done()
	}, nil
}

func (b *Bundler) collect(ctx context.Context, a *anomaly.Anomaly, names []string, log *slog.Logger) (Report, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(b.life, cancel)()

	rep, err := b.write(ctx, a, names, log)
	switch {
	case errors.Is(err, ErrLowSpace):
		b.c.lowSpace.Add(1)
		log.Warn("bundle skipped", "error", err)
	case err != nil:
		b.c.failed.Add(1)
		log.Error("bundle failed", "error", err)
	default:
		b.c.bundles.Add(1)
		b.c.bundleBytes.Add(uint64(rep.Bytes))
		log.Info("bundle written", "path", rep.Path, "bytes", rep.Bytes,
			"took", rep.Finished.Sub(rep.Started))
		if b.o.Upload != nil {
			b.o.Upload.Notify(rep.Path, a) // before the sweep, which must see it held
		}
		b.sweeper.Trigger()
	}
	return rep, err
}

// uniqueTime returns t, moved forward by the least amount needed to differ from
// every earlier bundle's time, so two anomalies detected in the same nanosecond
// still get two names.
func (b *Bundler) uniqueTime(t time.Time) time.Time {
	for {
		last := b.lastNanos.Load()
		n := max(t.UnixNano(), last+1)
		if b.lastNanos.CompareAndSwap(last, n) {
			return time.Unix(0, n)
		}
	}
}

// actionLimit divides the space above the floor among the actions. An action's
// output exists twice at worst (its spool file, then compressed in the bundle), so
// each gets at most half its share.
func (b *Bundler) actionLimit(free int64, n int) (limit int64, shrunk bool, err error) {
	limit = b.o.MaxActionBytes
	if b.o.MinFreeBytes <= 0 {
		return limit, false, nil
	}
	budget := free - b.o.MinFreeBytes
	if budget < minBudget {
		return 0, false, fmt.Errorf("%w (%d bytes free, floor %d)", ErrLowSpace, free, b.o.MinFreeBytes)
	}
	if share := budget / int64(2*max(n, 1)); share < limit {
		return share, true, nil
	}
	return limit, false, nil
}

// member is one finished output file waiting to go into the tar stream.
type member struct {
	name string
	f    *os.File
}

type finished struct {
	i       int
	res     actions.Result
	members []member
}

func (b *Bundler) write(ctx context.Context, a *anomaly.Anomaly, names []string, log *slog.Logger) (Report, error) {
	rep := Report{Started: time.Now()}
	d, err := archive.OpenDir(b.o.OutputDir)
	if err != nil {
		return rep, err
	}
	defer d.Close()
	free, err := d.Available()
	if err != nil {
		return rep, err
	}
	limit, shrunk, err := b.actionLimit(free, len(names))
	if err != nil {
		return rep, err
	}
	if shrunk {
		b.c.shrunk.Add(1)
		log.Warn("bundle shrunk to keep the free-space floor", "action_bytes", limit,
			"free", free, "floor", b.o.MinFreeBytes)
	}
	when := a.DetectedAt
	if when.IsZero() {
		when = rep.Started
	}
	name := archive.BundleName(b.uniqueTime(when), a.Protocol, a.Type)
	w, err := d.Create(name, b.o.ZstdLevel)
	if err != nil {
		return rep, err
	}
	top := strings.TrimSuffix(name, archive.BundleSuffix) + "/"
	env := &actions.Env{Anomaly: a, Since: when.Add(-b.o.Lookback), Until: rep.Started,
		Inflight: b.o.Inflight, LookPath: b.o.LookPath}

	done := make(chan finished)
	for i, n := range names {
		go func() { done <- b.run(ctx, i, n, env, limit, d) }()
	}
	// Append each action's files as it finishes, so spool space is returned early
	// and the tar stream is written while slower actions still run.
	rep.Actions = make([]actions.Result, len(names))
	var werr error
	for range names {
		f := <-done
		rep.Actions[f.i] = f.res
		for _, m := range f.members {
			if werr == nil {
				werr = w.AddFile(top+m.name, m.f)
			}
			m.f.Close()
		}
	}
	if werr != nil {
		w.Abort()
		return rep, werr
	}
	rep.Finished = time.Now()
	man := Manifest{Format: ManifestFormat, Bundle: name, Started: rep.Started, Completed: rep.Finished,
		Host: hostInfo(), Agent: agentInfo(), Anomaly: anomalyInfo(a),
		Window:  Window{Since: env.Since, Until: env.Until, LookbackS: b.o.Lookback.Seconds()},
		Limits:  Limits{ActionTimeoutS: b.o.ActionTimeout.Seconds(), ActionBytes: limit, Shrunk: shrunk, FreeBytes: free},
		Actions: rep.Actions}
	data, err := json.MarshalIndent(man, "", "  ")
	if err == nil {
		err = w.AddBytes(top+ManifestName, append(data, '\n'))
	}
	if err != nil {
		w.Abort()
		return rep, err
	}
	rep.Path, rep.Bytes, err = w.Commit()
	return rep, err
}

// run runs one action once a slot is free, with its output spooled to anonymous
// files in the batches directory.
func (b *Bundler) run(ctx context.Context, i int, name string, env *actions.Env, limit int64, d *archive.Dir) finished {
	f := finished{i: i}
	act, ok := b.table[name]
	if !ok {
		f.res = actions.Result{Name: name, Status: actions.StatusFailed, Start: time.Now(), Error: "unknown action"}
		return f
	}
	select {
	case b.slots <- struct{}{}:
		defer func() { <-b.slots }()
	case <-ctx.Done():
		f.res = actions.Result{Name: name, Status: actions.StatusCanceled, Start: time.Now(), Error: actions.Canceled(ctx) + " (before it ran)"}
		return f
	}
	out := actions.NewOutput(limit, func(file string) (io.Writer, error) {
		sf, err := d.Spool()
		if err != nil {
			return nil, err
		}
		f.members = append(f.members, member{name: file, f: sf})
		return sf, nil
	})
	f.res = actions.Run(ctx, act, env, out, b.o.ActionTimeout)
	return f
}
