package config

import (
	"math"
	"path/filepath"
	"time"
)

// AODv2 checked few of its numbers: it ran with any value of most of them, and with
// some it did something its author cannot have meant. aod loads every such value
// (policy in docs/configuration.md, "AODv2 files"): a value AODv2 read as meant keeps
// that meaning, and one it ignored or misread loads with a warning saying what aod
// does instead. Only what AODv2 rejected too is an error.

// atOrBelowZero says what becomes of an AODv2 setting of zero (or less) that AODv2
// accepted.
type atOrBelowZero struct {
	negative bool   // a negative value behaved as zero in AODv2 (else it is an error)
	use      int64  // what aod uses, in the stored unit
	aodv2    string // what AODv2 did with it
	aod      string // what aod does instead
}

// What aod does with AODv2's timing and retention settings at zero or below.
var (
	watchIntervalLow = atOrBelowZero{use: int64(time.Millisecond),
		aodv2: "AODv2 polled for events without pausing",
		aod:   "aod uses the shortest window, 0.001 (1 ms)"}
	cleanupEveryLow = atOrBelowZero{negative: true, use: int64(time.Second),
		aodv2: "AODv2 ran its cleanup without pausing",
		aod:   "aod runs it every second"}
	maxAgeLow = atOrBelowZero{negative: true,
		aodv2: "AODv2 deleted every bundle at each cleanup",
		aod:   "aod reads it as no age limit: bundles are deleted only to stay under max_total_log_size_mb"}
	maxSizeLow = atOrBelowZero{negative: true,
		aodv2: "AODv2 deleted every bundle at each cleanup",
		aod:   "aod reads it as no size limit: bundles are deleted only by max_log_age_days (and none is written while less than bundle.min_free_mb would stay free)"}
)

// aodv2Quantity decodes an AODv2 setting of q's unit that must be positive for aod.
// Above q's maximum, zero or less (as low says) and below q's resolution, it warns
// or rounds instead of failing.
func (d *decoder) aodv2Quantity(f field, q quantity, low atOrBelowZero) (int64, bool) {
	spec := q.numSpec
	spec.aodv2 = true
	spec.min, spec.minOpen = 0, false
	if low.negative {
		spec.min = math.Inf(-1)
	}
	x, ok := d.number(f, spec)
	if !ok {
		return 0, false
	}
	if x <= 0 {
		d.warnf(f.val, f.path, "%s: got %s; %s", low.aodv2, describe(f.val), low.aod)
		return low.use, true
	}
	// A positive value never becomes zero, which means "off" or "every" to aod.
	return max(int64(math.Round(x*q.unit/q.res)), 1) * int64(q.res), true
}

// aodv2Count decodes an AODv2 acceptable_count. AODv2 compared the number of events
// with it as given: a fraction made it fire at the next whole count, and zero or less
// on any event, as 1 does.
func (d *decoder) aodv2Count(f field) (int, bool) {
	spec := countSpec
	spec.min, spec.integer, spec.aodv2 = math.Inf(-1), false, true
	x, ok := d.number(f, spec)
	if !ok {
		return 0, false
	}
	n := math.Ceil(x)
	switch {
	case n < 1:
		d.warnf(f.val, f.path, "AODv2 fired on any event with a count below 1: got %s; aod uses 1, the same", describe(f.val))
		return 1, true
	case n != x:
		d.warnf(f.val, f.path, "not a whole count: got %s; AODv2 fired once %g events were counted, and aod uses %g", describe(f.val), n, n)
	}
	return int(n), true
}

// setAODv2 sets *dst to key of m, decoded by aodv2Quantity, when m has it.
func setAODv2[T ~int64](d *decoder, m *fields, key string, q quantity, low atOrBelowZero, dst *T) {
	if f, ok := m.get(key); ok {
		if v, ok := d.aodv2Quantity(f, q, low); ok {
			*dst = T(v)
		}
	}
}

// cleanupOutputDir checks cleanup.aod_output_dir, which AODv2's retention read (with
// /var/log/aod when absent) instead of the aod_output_dir its bundles went to. aod
// prunes where it writes, so a different directory there is ignored, with a warning.
func (d *decoder) cleanupOutputDir(m *fields, outputDir string) {
	f, ok := m.get("aod_output_dir")
	if !ok {
		return
	}
	s, ok := d.str(f, "a directory path")
	if !ok || filepath.Clean(s) == outputDir {
		return
	}
	d.warnf(f.val, f.path, "not where bundles go: got %s; AODv2 pruned bundles there while writing them to aod_output_dir; aod ignores this key and prunes its bundles in aod_output_dir (%s)", describe(f.val), outputDir)
}
