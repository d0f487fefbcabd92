// Package retention bounds the disk aod's bundles use: it deletes bundles older than
// the configured age and, when they exceed about 97 % of the size limit, the oldest
// ones until about 85 % remain (AODv2's rule). It only ever touches files named as
// aod names them, never a bundle still being written, and never follows a symlink.
// Temporaries left by a killed process are removed once their writer is provably gone.
package retention

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linuxdiag/aod/internal/archive"
)

// Watermarks of the size rule: cleaning starts above High and stops at Low, so a
// directory near its limit is not swept for every new bundle.
const (
	High = 0.97
	Low  = 0.85
)

// DefaultTempGrace is how old an unlocked temporary must be before it is removed.
const DefaultTempGrace = time.Minute

// Options configure a Sweeper.
type Options struct {
	// OutputDir is aod_output_dir; bundles are in its batches subdirectory.
	OutputDir string
	// Interval between sweeps (cleanup_interval_sec).
	Interval time.Duration
	// MaxAge deletes bundles older than this (max_log_age_days); 0 keeps them.
	MaxAge time.Duration
	// MaxTotalBytes is the size limit of all bundles (max_total_log_size_mb); 0 means
	// no limit.
	MaxTotalBytes int64
	// TempGrace is how long a temporary is left alone even when unlocked (default
	// DefaultTempGrace): a writer locks its file right after creating it.
	TempGrace time.Duration
	Logger    *slog.Logger
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
	// Hold, if set, says a bundle still waits for its upload: the age and size rules
	// leave it alone, and only the free-space floor can delete it.
	Hold func(name string) bool
	// MinFreeBytes is the free-space floor of the output filesystem: when free
	// space is below it after the other rules, held bundles go too, oldest first,
	// each reported to Dropped. 0: no floor.
	MinFreeBytes int64
	// Dropped, if set, learns of each held bundle deleted for the floor.
	Dropped func(name, why string)
	// Counters, when set, are an earlier Sweeper's (see Sweeper.Counters): this one
	// counts on from them, so a configuration reload does not reset aod's counters.
	// Nil starts from zero.
	Counters *Counters
}

// Reasons a bundle is deleted.
const (
	ReasonAge  = "age"
	ReasonSize = "size"
	// ReasonFloor deletes a bundle that was still waiting for its upload: free
	// space was below the floor. The upload counts it as lost.
	ReasonFloor = "floor"
)

// Deletion is one file a sweep removed.
type Deletion struct {
	Name   string
	Bytes  int64
	Reason string // ReasonAge, ReasonSize, or "stale temporary"
}

// Report is what one sweep did.
type Report struct {
	Deleted    []Deletion
	Kept       []string // bundles left, oldest first
	TotalBytes int64    // bytes of bundles and in-progress temporaries after the sweep
	Ignored    []string // entries named like aod's files that are not regular files
}

// Stats count every sweep's work since start, for the agent's own metrics.
type Stats struct {
	Sweeps, Errors                 uint64
	Deleted, DeletedBytes          uint64 // bundles
	DeletedHeld                    uint64 // of Deleted: held for upload, deleted for the floor
	TempsRemoved, TempsRemovedSize uint64
	// TotalBytes is what bundles and bundles in progress used after the last sweep
	// that could list the directory; Measured is false until one could.
	TotalBytes int64
	Measured   bool
}

// Counters are what a Sweeper counts, kept apart so that the Sweeper replacing it
// on a configuration reload counts on from the same values.
type Counters struct {
	sweeps, errs, deleted, deletedBytes, temps, tempBytes, held atomic.Uint64
	total                                                       atomic.Int64 // -1 until measured
}

// NewCounters returns counters at zero, with the disk use not yet measured.
func NewCounters() *Counters {
	c := &Counters{}
	c.total.Store(-1)
	return c
}

// Sweeper applies the retention rules.
type Sweeper struct {
	o       Options
	log     *slog.Logger
	mu      sync.Mutex // one sweep at a time
	trigger chan struct{}
	c       *Counters
}

// New checks the options.
func New(o Options) (*Sweeper, error) {
	if o.OutputDir == "" {
		return nil, errors.New("retention: output directory is not set")
	}
	if o.MaxAge < 0 || o.MaxTotalBytes < 0 || o.Interval < 0 {
		return nil, errors.New("retention: negative limit")
	}
	if o.TempGrace <= 0 {
		o.TempGrace = DefaultTempGrace
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Counters == nil {
		o.Counters = NewCounters()
	}
	return &Sweeper{o: o, log: o.Logger.With("component", "retention"), trigger: make(chan struct{}, 1), c: o.Counters}, nil
}

// Counters returns the sweeper's counters, for the Sweeper that replaces it.
func (s *Sweeper) Counters() *Counters { return s.c }

// Stats returns the counters.
func (s *Sweeper) Stats() Stats {
	c := s.c
	total := c.total.Load()
	return Stats{Sweeps: c.sweeps.Load(), Errors: c.errs.Load(), Deleted: c.deleted.Load(),
		DeletedBytes: c.deletedBytes.Load(), DeletedHeld: c.held.Load(), TempsRemoved: c.temps.Load(), TempsRemovedSize: c.tempBytes.Load(),
		TotalBytes: max(total, 0), Measured: total >= 0}
}

type bundle struct {
	name string
	at   time.Time
	size int64
}

// Sweep applies the rules once.
func (s *Sweeper) Sweep() (Report, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.c.sweeps.Add(1)
	rep, err := s.sweep()
	if err != nil {
		s.c.errs.Add(1)
	}
	return rep, err
}

func (s *Sweeper) sweep() (Report, error) {
	var rep Report
	d, err := archive.OpenDir(s.o.OutputDir)
	if err != nil {
		return rep, err
	}
	defer d.Close()
	entries, err := d.List()
	if err != nil {
		return rep, err
	}
	now := s.o.Now()
	var bundles []bundle
	var inProgress int64
	var errs []error
	for _, e := range entries {
		b, isBundle := archive.ParseBundleName(e.Name)
		isTemp := archive.IsTempName(e.Name)
		switch {
		case !isBundle && !isTemp:
			continue // not aod's
		case !e.Mode.IsRegular():
			rep.Ignored = append(rep.Ignored, e.Name)
			s.log.Warn("not a regular file; left alone and not followed", "name", e.Name, "mode", e.Mode.String())
		case isTemp:
			size, err := d.RemoveStaleTemp(e.Name, now.Add(-s.o.TempGrace))
			switch {
			case errors.Is(err, archive.ErrInUse):
				inProgress += e.Size
			case err != nil:
				errs = append(errs, err)
			default:
				s.c.temps.Add(1)
				s.c.tempBytes.Add(uint64(size))
				rep.Deleted = append(rep.Deleted, Deletion{Name: e.Name, Bytes: size, Reason: "stale temporary"})
				s.log.Info("removed a temporary left by an interrupted bundle", "name", e.Name, "bytes", size)
			}
		default:
			bundles = append(bundles, bundle{name: e.Name, at: b.Time, size: e.Size})
		}
	}
	slices.SortFunc(bundles, func(a, b bundle) int {
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.name, b.name))
	})
	remove := func(b bundle, reason string) bool {
		if err := d.Remove(b.name); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			return false
		}
		s.c.deleted.Add(1)
		s.c.deletedBytes.Add(uint64(b.size))
		rep.Deleted = append(rep.Deleted, Deletion{Name: b.name, Bytes: b.size, Reason: reason})
		s.log.Info("deleted bundle", "name", b.name, "bytes", b.size, "reason", reason)
		return true
	}
	held := func(b bundle) bool { return s.o.Hold != nil && s.o.Hold(b.name) }
	kept := bundles[:0]
	var total int64
	for _, b := range bundles {
		if s.o.MaxAge > 0 && now.Sub(b.at) > s.o.MaxAge && !held(b) && remove(b, ReasonAge) {
			continue
		}
		kept = append(kept, b)
		total += b.size
	}
	total += inProgress
	if limit := s.o.MaxTotalBytes; limit > 0 && float64(total) > High*float64(limit) {
		target := int64(Low * float64(limit))
		var rest []bundle
		for _, b := range kept {
			if total > target && !held(b) && remove(b, ReasonSize) {
				total -= b.size
				continue
			}
			rest = append(rest, b)
		}
		kept = rest
	}
	if s.o.MinFreeBytes > 0 && s.o.Hold != nil {
		kept, total = s.floor(d, kept, total, held, remove, &errs)
	}
	for _, b := range kept {
		rep.Kept = append(rep.Kept, b.name)
	}
	rep.TotalBytes = total
	s.c.total.Store(total) // removals that failed left their bundles, still counted
	if err := errors.Join(errs...); err != nil {
		return rep, fmt.Errorf("retention: %w", err)
	}
	return rep, nil
}

// floor deletes bundles, oldest first, while free space is below MinFreeBytes:
// those not held for upload first, then held ones, each reported to Dropped.
func (s *Sweeper) floor(d *archive.Dir, kept []bundle, total int64, held func(bundle) bool,
	remove func(bundle, string) bool, errs *[]error) ([]bundle, int64) {
	free, err := d.Available()
	if err != nil {
		*errs = append(*errs, err)
		return kept, total
	}
	gone := map[string]bool{}
	for _, pass := range []bool{false, true} {
		for _, b := range kept {
			if free >= s.o.MinFreeBytes {
				break
			}
			if held(b) != pass || !remove(b, ReasonFloor) {
				continue
			}
			gone[b.name] = true
			free += b.size
			total -= b.size
			if pass {
				s.c.held.Add(1)
				if s.o.Dropped != nil {
					s.o.Dropped(b.name, fmt.Sprintf("deleted before its upload: free space below the floor of %d bytes", s.o.MinFreeBytes))
				}
			}
		}
	}
	rest := kept[:0]
	for _, b := range kept {
		if !gone[b.name] {
			rest = append(rest, b)
		}
	}
	return rest, total
}

// Trigger asks for a sweep soon (after a new bundle) without waiting for it.
func (s *Sweeper) Trigger() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// Run sweeps at start, every Interval and on Trigger, until ctx ends.
func (s *Sweeper) Run(ctx context.Context) {
	var tick <-chan time.Time
	if s.o.Interval > 0 {
		t := time.NewTicker(s.o.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		if _, err := s.Sweep(); err != nil {
			s.log.Error("retention sweep failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-s.trigger:
		}
	}
}
