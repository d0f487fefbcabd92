// Package upload ships diagnostic bundles to object storage (Azure Blob Storage,
// S3-compatible stores) durably: each bundle is stored once per destination, even
// across agent restarts, crashes in the middle of an upload and retention running
// beside it.
//
// A bundle's object name holds its content digest and every PUT is a conditional
// create (If-None-Match: *), so a retry can only meet its own earlier upload, which
// the store refuses with 409 or 412 and which is then counted as already present,
// never overwritten. The state of every bundle at every destination (pending,
// in_progress, uploaded, skipped, failed, lost) is journaled on the local disk
// before it takes effect and read back at start, together with a scan of the
// bundle directory, so nothing written while the agent was down is forgotten.
//
// Faults are absorbed, never passed on: failed attempts are retried with
// exponential backoff and full jitter; authorisation and not-found errors (which
// every bundle would meet) open a per-destination circuit breaker instead of
// spending each bundle's attempts; uploads are bounded in number, bandwidth and
// time; and nothing here ever blocks the detection or the writing of bundles.
package upload

import (
	"cmp"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/archive"
	"github.com/linuxdiag/aod/internal/version"
)

// State is where a bundle stands with one destination.
type State string

// States of a bundle at a destination. Pending and in progress are live; the
// others are final.
const (
	StatePending    State = "pending"
	StateInProgress State = "in_progress"
	StateUploaded   State = "uploaded" // stored (by this upload or an earlier one)
	StateSkipped    State = "skipped"  // not a regular file: never read, never uploaded
	StateFailed     State = "failed"   // refused for good (a 4xx other than auth/not found), or out of attempts
	StateLost       State = "lost"     // deleted from the disk before it could be uploaded
)

func (s State) valid() bool {
	switch s {
	case StatePending, StateInProgress, StateUploaded, StateSkipped, StateFailed, StateLost:
		return true
	}
	return false
}

// Final reports whether nothing more will happen to the bundle at that destination.
func (s State) Final() bool { return s.valid() && s != StatePending && s != StateInProgress }

// Outcomes, the outcome attribute of the bundles metric: how a bundle's upload to
// one destination ended.
const (
	OutcomeUploaded       = "uploaded"        // this agent created the object
	OutcomeAlreadyPresent = "already_present" // the store had it (an earlier attempt whose reply was lost)
	OutcomeFailed         = "failed"
	OutcomeLost           = "lost"
	OutcomeSkipped        = "skipped"
)

// Defaults of the zero Options fields.
const (
	DefaultConcurrency     = 2
	DefaultTimeout         = 10 * time.Minute
	DefaultMinBackoff      = 5 * time.Second
	DefaultMaxBackoff      = 10 * time.Minute
	DefaultBreakerCooldown = 5 * time.Minute
	DefaultScanInterval    = 5 * time.Minute
	// maxCooldown bounds the breaker's doubling cooldown.
	maxCooldown = time.Hour
)

// Options configure an Uploader.
type Options struct {
	// OutputDir is aod_output_dir: bundles are read from its batches directory.
	OutputDir string
	// StateDir holds the journal; default <OutputDir>/upload.
	StateDir     string
	Destinations []Destination
	Prefix       string // object name prefix; default DefaultPrefix
	Host         string // host segment of object names; default os.Hostname
	Concurrency  int    // uploads at once, across destinations
	// BytesPerSecond bounds the bandwidth of all uploads together; 0: unbounded.
	BytesPerSecond int64
	Timeout        time.Duration // per PUT
	MinBackoff     time.Duration // first retry's ceiling; each failure doubles it
	MaxBackoff     time.Duration
	// MaxAttempts gives up (state failed) after that many failed attempts; 0 retries
	// transient failures for as long as the bundle is on disk.
	MaxAttempts     int
	BreakerCooldown time.Duration // first pause of a destination after 401/403/404
	ScanInterval    time.Duration // periodic scan of the bundle directory
	Logger          *slog.Logger
	// OnOutcome, if set, is called once per bundle and destination that reaches a
	// final state, from the uploader's goroutines; it must not block.
	OnOutcome func(Outcome)
}

// Outcome is the end of one bundle's upload to one destination.
type Outcome struct {
	Bundle, Destination string
	State               State
	Outcome             string // OutcomeUploaded, ...
	URL                 string // the object's, when stored
	// Path is the bundle's file on the host (it may be gone since: retention).
	Path string
	// Anomaly is what the bundle was written for; zero for a bundle the uploader
	// found on disk without being told of it (one written before an upgrade).
	Anomaly  Link
	Bytes    int64
	Duration time.Duration // of the attempt that ended it
	Err      error         // the last failure, for failed and lost
}

func (o *Options) defaults() error {
	if o.OutputDir == "" {
		return errors.New("upload: output directory is not set")
	}
	if len(o.Destinations) == 0 {
		return errors.New("upload: no destination")
	}
	if o.StateDir == "" {
		o.StateDir = filepath.Join(o.OutputDir, "upload")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	o.Concurrency = cmp.Or(max(o.Concurrency, 0), DefaultConcurrency)
	o.Timeout = cmp.Or(max(o.Timeout, 0), DefaultTimeout)
	o.MinBackoff = cmp.Or(max(o.MinBackoff, 0), DefaultMinBackoff)
	o.MaxBackoff = max(cmp.Or(max(o.MaxBackoff, 0), DefaultMaxBackoff), o.MinBackoff)
	o.BreakerCooldown = cmp.Or(max(o.BreakerCooldown, 0), DefaultBreakerCooldown)
	o.ScanInterval = cmp.Or(max(o.ScanInterval, 0), DefaultScanInterval)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

type entry struct {
	record
	next    time.Time // not before
	running bool
}

// Uploader uploads the bundles of one output directory. New recovers its state,
// Start runs it, Notify hands it a new bundle at once, Shutdown stops it.
type Uploader struct {
	o       Options
	log     *slog.Logger
	dests   map[string]Destination
	names   []string // destination names, sorted
	limiter *rate.Limiter

	mu       sync.Mutex
	j        *journal
	entries  map[entryKey]*entry
	incoming map[string]*Link // bundles notified, not yet added
	breakers map[string]*breaker
	busy     int
	c        counters

	wake    chan struct{}
	life    context.Context
	end     context.CancelFunc
	done    chan struct{}
	workers sync.WaitGroup
	started bool
}

// New reads the journal and scans the bundle directory: from its return, Holds
// answers for every bundle on disk. Nothing is uploaded until Start.
func New(o Options) (*Uploader, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	u := &Uploader{o: o, log: o.Logger.With("component", "upload"), dests: map[string]Destination{},
		entries: map[entryKey]*entry{}, incoming: map[string]*Link{}, breakers: map[string]*breaker{},
		wake: make(chan struct{}, 1), done: make(chan struct{}), c: newCounters()}
	for _, d := range o.Destinations {
		if _, dup := u.dests[d.Name()]; dup {
			return nil, fmt.Errorf("upload: two destinations named %q", d.Name())
		}
		u.dests[d.Name()] = d
		u.breakers[d.Name()] = &breaker{}
	}
	u.names = slices.Sorted(maps.Keys(u.dests))
	if o.BytesPerSecond > 0 {
		u.limiter = rate.NewLimiter(rate.Limit(o.BytesPerSecond), int(min(o.BytesPerSecond, maxChunk)))
	}
	onDisk, err := u.list()
	if err != nil {
		return nil, err
	}
	j, live, warns, err := openJournal(o.StateDir, func(r record) bool {
		_, ok := onDisk[r.Bundle]
		return ok || !r.State.Final()
	})
	if err != nil {
		return nil, err
	}
	for _, w := range warns {
		u.log.Warn("upload state journal damaged; the line is ignored", "detail", w)
	}
	u.j = j
	for k, r := range live {
		if _, known := u.dests[k.dest]; !known {
			continue // a destination no longer configured
		}
		if r.State == StateInProgress {
			// Interrupted: the PUT may or may not have reached the store; the
			// conditional create sorts that out.
			r.State = StatePending
		}
		u.entries[k] = &entry{record: r}
	}
	u.mu.Lock()
	u.reconcile(onDisk)
	u.mu.Unlock()
	return u, nil
}

// Start runs the uploader until Shutdown.
func (u *Uploader) Start() {
	u.life, u.end = context.WithCancel(context.Background())
	u.started = true
	go u.run()
}

// Shutdown stops the uploader: uploads in progress are cut off (and resumed by the
// next start) and the journal is closed. It waits for them within ctx.
func (u *Uploader) Shutdown(ctx context.Context) error {
	if u.started {
		u.end()
		select {
		case <-u.done:
		case <-ctx.Done():
			return fmt.Errorf("upload: uploads still stopping: %w", ctx.Err())
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.takeIncoming() // journaled with their anomalies, for the next start
	return u.j.close()
}

// Notify hands the uploader a bundle just written (its path or file name) for
// anomaly a (nil: none), whose identity the bundle's journal record and its
// Outcome then carry, across restarts. It never blocks; the bundle is also found
// by the next scan if this is missed, without its anomaly.
func (u *Uploader) Notify(path string, a *anomaly.Anomaly) {
	l := LinkOf(a)
	u.mu.Lock()
	u.incoming[filepath.Base(path)] = &l
	u.mu.Unlock()
	u.poke()
}

func (u *Uploader) poke() {
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// Holds reports whether bundle (a file name) still waits for an upload, so that
// retention leaves it alone unless the disk floor forces it.
func (u *Uploader) Holds(bundle string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.incoming[bundle]; ok {
		return true
	}
	for _, n := range u.names {
		if e, ok := u.entries[entryKey{bundle, n}]; ok && !e.State.Final() {
			return true
		}
	}
	return false
}

// Dropped tells the uploader that bundle was deleted before its upload (retention
// forced by the disk floor): every destination still waiting for it counts it as
// lost. An upload already running goes on from its open file.
func (u *Uploader) Dropped(bundle, why string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.incoming, bundle)
	for _, n := range u.names {
		if e, ok := u.entries[entryKey{bundle, n}]; ok && !e.State.Final() && !e.running {
			u.finish(e, StateLost, OutcomeLost, errors.New(why), 0)
		}
	}
}

// list returns the bundles in the batches directory and whether each is a
// regular file.
func (u *Uploader) list() (map[string]bool, error) {
	d, err := archive.OpenDir(u.o.OutputDir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	ents, err := d.List()
	if err != nil {
		return nil, err
	}
	m := map[string]bool{}
	for _, e := range ents {
		if _, ok := archive.ParseBundleName(e.Name); ok {
			m[e.Name] = e.Mode.IsRegular()
		}
	}
	return m, nil
}

// reconcile brings the entries in line with the bundles on disk: new bundles become
// pending (or skipped when not regular files), live entries of vanished bundles
// lost, and final entries of vanished bundles are forgotten. Called with mu held.
func (u *Uploader) reconcile(onDisk map[string]bool) {
	for name, regular := range onDisk {
		u.add(name, regular, u.incoming[name])
	}
	for k, e := range u.entries {
		if _, ok := onDisk[k.bundle]; ok || e.running || u.incoming[k.bundle] != nil {
			continue
		}
		if e.State.Final() {
			delete(u.entries, k)
			continue
		}
		u.finish(e, StateLost, OutcomeLost, errors.New("the bundle was deleted from the disk before its upload"), 0)
		delete(u.entries, k)
	}
}

// add makes bundle pending at every destination that does not know it, for the
// anomaly link names (nil or zero: unknown). A scan may have found the bundle
// between its rename and its Notify: its entry then gets the link. Called with mu
// held.
func (u *Uploader) add(bundle string, regular bool, link *Link) {
	if link != nil && *link == (Link{}) {
		link = nil
	}
	for _, n := range u.names {
		k := entryKey{bundle, n}
		if e, ok := u.entries[k]; ok {
			if e.Anomaly == nil && link != nil && !e.State.Final() {
				e.Anomaly = link
				u.save(e)
			}
			continue
		}
		e := &entry{record: record{Bundle: bundle, Dest: n, State: StatePending, At: time.Now(), Anomaly: link}}
		u.entries[k] = e
		if !regular {
			u.finish(e, StateSkipped, OutcomeSkipped, errors.New("not a regular file"), 0)
			continue
		}
		u.save(e)
	}
}

// save journals e's record. A journal that cannot be written is logged and the
// state kept in memory: the upload goes on, and at worst a restart repeats a PUT
// that the store then refuses as already there.
func (u *Uploader) save(e *entry) {
	e.At = time.Now()
	if err := u.j.append(e.record); err != nil {
		u.c.failure(e.Dest, ReasonLocal)
		u.log.Error("upload state not saved", "bundle", e.Bundle, "destination", e.Dest, "error", err)
	}
}

// finish puts e in a final state, journals, counts and logs it. Called with mu held.
func (u *Uploader) finish(e *entry, s State, outcome string, err error, took time.Duration) {
	e.State, e.Outcome = s, outcome
	if err != nil {
		e.Error = truncate(err.Error())
	}
	u.save(e)
	u.c.outcome(e.Dest, outcome, took)
	url := ""
	if s == StateUploaded {
		url = u.dests[e.Dest].URL(e.Key)
	}
	log := u.log.With("bundle", e.Bundle, "destination", e.Dest, "outcome", outcome, "attempts", e.Attempts)
	switch s {
	case StateUploaded:
		log.Info("bundle uploaded", "url", url, "bytes", e.Bytes, "took", took)
	case StateSkipped:
		log.Warn("bundle not uploaded", "error", err)
	default:
		log.Error("bundle not uploaded", "error", err)
	}
	if u.o.OnOutcome != nil {
		o := Outcome{Bundle: e.Bundle, Destination: e.Dest, State: s, Outcome: outcome, URL: url,
			Path: filepath.Join(u.o.OutputDir, archive.BatchesDir, e.Bundle), Bytes: e.Bytes, Duration: took, Err: err}
		if e.Anomaly != nil {
			o.Anomaly = *e.Anomaly
		}
		u.o.OnOutcome(o)
	}
}

func truncate(s string) string {
	const limit = 1024
	if len(s) > limit {
		return s[:limit] + "…"
	}
	return s
}

func (u *Uploader) run() {
	defer close(u.done)
	scan := time.NewTicker(u.o.ScanInterval)
	defer scan.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := u.dispatch()
		timer.Stop()
		var due <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			due = timer.C
		}
		select {
		case <-u.life.Done():
			u.workers.Wait()
			return
		case <-u.wake:
		case <-due:
		case <-scan.C:
			if onDisk, err := u.list(); err != nil {
				u.log.Error("upload scan failed", "error", err)
			} else {
				u.mu.Lock()
				u.reconcile(onDisk)
				u.mu.Unlock()
			}
		}
	}
}

// takeIncoming adds the bundles notified since the last call. Called with mu held.
func (u *Uploader) takeIncoming() {
	for name, link := range u.incoming {
		u.add(name, true, link)
		delete(u.incoming, name)
	}
}

// dispatch starts the uploads that are due, up to the concurrency bound, oldest
// bundle first, and returns when the next waiting one is due (zero: none waits).
func (u *Uploader) dispatch() time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.takeIncoming()
	now := time.Now()
	var due []*entry
	var next time.Time
	soonest := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, e := range u.entries {
		if e.State.Final() || e.running {
			continue
		}
		at := e.next
		if b := u.breakers[e.Dest]; b.openUntil.After(at) {
			at = b.openUntil
		}
		if at.After(now) {
			soonest(at)
			continue
		}
		due = append(due, e)
	}
	slices.SortFunc(due, func(a, b *entry) int { return cmp.Or(cmp.Compare(a.Bundle, b.Bundle), cmp.Compare(a.Dest, b.Dest)) })
	for _, e := range due {
		if u.busy >= u.o.Concurrency {
			break
		}
		if !u.breakers[e.Dest].allow(now) {
			continue // a probe of this destination is out; its result decides
		}
		e.running = true
		u.busy++
		u.workers.Add(1)
		go u.attempt(e)
	}
	return next
}

// attempt makes one try at e's upload.
func (u *Uploader) attempt(e *entry) {
	defer u.workers.Done()
	defer u.poke()
	start := time.Now()
	err := u.try(e)
	took := time.Since(start)

	u.mu.Lock()
	defer u.mu.Unlock()
	e.running = false
	u.busy--
	b := u.breakers[e.Dest]
	if err == nil {
		b.success()
		u.finish(e, StateUploaded, e.Outcome, nil, took)
		return
	}
	if u.life.Err() != nil {
		// Cut off by Shutdown: not the bundle's failure. It stays in_progress in
		// the journal and is retried at the next start.
		b.abandon()
		return
	}
	if errors.Is(err, fs.ErrNotExist) {
		b.abandon()
		u.finish(e, StateLost, OutcomeLost, fmt.Errorf("the bundle was deleted from the disk before its upload: %w", err), took)
		return
	}
	reason, retry := classify(err)
	u.c.failure(e.Dest, reason)
	e.Reason, e.Error = reason, truncate(err.Error())
	log := u.log.With("bundle", e.Bundle, "destination", e.Dest, "reason", reason, "attempt", e.Attempts, "error", err)
	if tripsBreaker(reason) {
		until := b.trip(time.Now(), u.o.BreakerCooldown)
		log.Error("uploads to this destination paused: check its credentials, permissions and container or bucket",
			"until", until.Format(time.RFC3339))
		e.State = StatePending
		u.save(e)
		return
	}
	b.abandon()
	if !retry || (u.o.MaxAttempts > 0 && e.Attempts >= u.o.MaxAttempts) {
		u.finish(e, StateFailed, OutcomeFailed, err, took)
		return
	}
	e.State = StatePending
	e.next = time.Now().Add(u.backoff(e.Attempts))
	u.save(e)
	log.Warn("upload attempt failed; will retry", "retry_in", time.Until(e.next).Round(time.Millisecond))
}

// backoff is the wait before retry n (n >= 1): full jitter over an exponentially
// growing ceiling, so a fleet that lost its store does not come back in step.
func (u *Uploader) backoff(n int) time.Duration {
	ceiling := u.o.MaxBackoff
	if n < 32 {
		ceiling = min(u.o.MinBackoff<<(n-1), u.o.MaxBackoff)
		if ceiling <= 0 { // overflow
			ceiling = u.o.MaxBackoff
		}
	}
	return time.Duration(rand.Int64N(int64(ceiling)) + 1)
}

// try uploads e's bundle and then its manifest. The state is journaled before each
// PUT and after the bundle is stored, so a crash anywhere resumes where it was.
func (u *Uploader) try(e *entry) error {
	d, err := archive.OpenDir(u.o.OutputDir)
	if err != nil {
		return err
	}
	f, err := d.Open(e.Bundle)
	d.Close()
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	sum, err := digest(f)
	if err != nil {
		return fmt.Errorf("read %s: %w", f.Name(), err)
	}
	key, mkey, _ := ObjectKey(u.o.Prefix, u.o.Host, e.Bundle, sum.SHA256)
	dest := u.dests[e.Dest]

	u.mu.Lock()
	if e.Key != "" && e.Key != key {
		// The file changed under the same name since an earlier attempt: aod never
		// rewrites a bundle, so someone else did. Upload what is there now.
		e.Stored, e.Outcome = false, ""
	}
	e.State, e.Attempts, e.Key, e.SHA256, e.Bytes = StateInProgress, e.Attempts+1, key, hex.EncodeToString(sum.SHA256[:]), size
	u.save(e)
	stored := e.Stored
	u.mu.Unlock()

	started := time.Now()
	if !stored {
		err := u.put(dest, key, f, size, sum)
		outcome := OutcomeUploaded
		if errors.Is(err, ErrExists) {
			outcome, err = OutcomeAlreadyPresent, nil
		}
		if err != nil {
			return err
		}
		u.mu.Lock()
		e.Stored, e.Outcome = true, outcome
		u.save(e)
		u.mu.Unlock()
		u.c.sent(e.Dest, size, outcome == OutcomeUploaded)
	}
	m := Manifest{Format: ManifestFormat, Object: key, Bundle: e.Bundle, Host: u.o.Host,
		SHA256: hex.EncodeToString(sum.SHA256[:]), Bytes: size, UploadedAt: started.UTC(), Agent: version.Version}
	if b, ok := archive.ParseBundleName(e.Bundle); ok {
		m.Created = b.Time.UTC()
	}
	body := m.encode()
	msum := Digest{SHA256: sha256.Sum256(body), MD5: md5.Sum(body)}
	if err := u.put(dest, mkey, newBytesReader(body), int64(len(body)), msum); err != nil && !errors.Is(err, ErrExists) {
		return fmt.Errorf("manifest: %w", err)
	}
	return nil
}

// put is one PUT within the upload timeout and the bandwidth bound.
func (u *Uploader) put(dest Destination, key string, r io.ReadSeeker, size int64, sum Digest) error {
	ctx, cancel := context.WithTimeoutCause(u.life, u.o.Timeout,
		fmt.Errorf("upload timeout (%s) ran out", u.o.Timeout))
	defer cancel()
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return err
	}
	var body io.ReadSeeker = r
	if u.limiter != nil {
		body = &limitedReader{ctx: ctx, r: r, l: u.limiter}
	}
	err := dest.Put(ctx, key, body, size, sum)
	if err != nil && ctx.Err() != nil && u.life.Err() == nil {
		return fmt.Errorf("%w: %w", context.Cause(ctx), context.DeadlineExceeded)
	}
	return err
}

func digest(f *os.File) (Digest, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Digest{}, err
	}
	s, m := sha256.New(), md5.New()
	if _, err := io.Copy(io.MultiWriter(s, m), f); err != nil {
		return Digest{}, err
	}
	var d Digest
	s.Sum(d.SHA256[:0])
	m.Sum(d.MD5[:0])
	return d, nil
}
