package detector

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/proto"
)

// Defaults applied to zero-valued parameters.
const (
	// DefaultCeiling is AODv2's hard-coded limit: any single request this slow fires.
	DefaultCeiling = config.DefaultLatencyCeiling
	// DefaultMaxEvents bounds the triggering events kept with one anomaly.
	DefaultMaxEvents = config.DefaultMaxEvents
	// maxAcceptableCount bounds per-rule memory (8 bytes per counted event).
	maxAcceptableCount = 1 << 20
)

// CommandThreshold is the resolved latency rule for one command.
type CommandThreshold struct {
	Tracked   bool          // false: the command is ignored (excluded, or absent in trackonly)
	Threshold time.Duration // a request counts when its latency is >= Threshold
}

// LatencyParams configures the latency detector with thresholds already resolved from
// AODv2's mode / default_threshold_ms / track_commands / exclude_commands.
type LatencyParams struct {
	// Commands is indexed by command code; codes the protocol does not have stay
	// untracked.
	Commands        [proto.MaxCommands]CommandThreshold
	AcceptableCount int           // requests at or over threshold within Window that fire
	Window          time.Duration // watch_interval_sec
	// Ceiling fires on any single tracked request at least this slow, whatever the
	// count and its command's threshold; 0 disables it. AODv2 used DefaultCeiling.
	Ceiling   time.Duration
	Cooldown  time.Duration // minimum time between two emitted latency anomalies; 0: none
	MaxEvents int           // triggering events kept per anomaly; 0 means DefaultMaxEvents
}

// ErrorRule is one named error rule. A failed request matches when it matches both the
// command axis and the error axis; an empty axis matches everything.
type ErrorRule struct {
	Name            string
	AcceptableCount int              // matching failures within the window that fire
	Commands        proto.CommandSet // the command axis; empty: any command
	// Statuses (the protocol's failure statuses: NTSTATUS for SMB) and Errnos (positive errno values, 5 for EIO) form the
	// error axis: a failure matches when its status is in Statuses or the -errno the
	// kernel mapped it to is in Errnos, as AODv2's track_errors mixes both kinds of
	// name. Both empty: any error.
	Statuses []uint32
	Errnos   []int32
}

// ErrorParams configures the error detector. AODv2's legacy single-rule form is one
// rule; the named rules form is one rule each. Every rule counts on its own, so one
// failure can count towards several rules.
type ErrorParams struct {
	Rules     []ErrorRule
	Window    time.Duration // watch_interval_sec
	Cooldown  time.Duration // per rule; 0: none
	MaxEvents int           // 0 means DefaultMaxEvents
}

// SockconnParams configures the connection detector.
type SockconnParams struct {
	// AcceptableCount is how many connection losses (dropped established connections,
	// kernel reconnects, failed connects) within Window fire. 0 means 1: AODv2 reports
	// any change of the connection set.
	AcceptableCount int
	Window          time.Duration // watch_interval_sec; also the /proc polling period
	Cooldown        time.Duration // 0: none
	Port            uint16        // remote TCP port of the protocol's connections; 0: its table's Port
	MaxEvents       int           // 0 means DefaultMaxEvents
}

func checkCommon(what string, window, cooldown time.Duration, maxEvents int) error {
	var errs []error
	if window <= 0 {
		errs = append(errs, fmt.Errorf("%s: window must be positive, got %v", what, window))
	}
	if cooldown < 0 {
		errs = append(errs, fmt.Errorf("%s: cooldown must not be negative, got %v", what, cooldown))
	}
	if maxEvents < 0 {
		errs = append(errs, fmt.Errorf("%s: max events must not be negative, got %d", what, maxEvents))
	}
	return errors.Join(errs...)
}

func checkCount(what string, n int) error {
	if n < 1 || n > maxAcceptableCount {
		return fmt.Errorf("%s: acceptable_count must be between 1 and %d, got %d", what, maxAcceptableCount, n)
	}
	return nil
}

// Validate reports every problem with p.
func (p *LatencyParams) Validate() error {
	errs := []error{checkCommon("latency", p.Window, p.Cooldown, p.MaxEvents), checkCount("latency", p.AcceptableCount)}
	if p.Ceiling < 0 {
		errs = append(errs, fmt.Errorf("latency: ceiling must not be negative, got %v", p.Ceiling))
	}
	tracked := false
	for code, c := range p.Commands {
		if c.Tracked && c.Threshold < 0 {
			errs = append(errs, fmt.Errorf("latency: command %d: threshold must not be negative, got %v", code, c.Threshold))
		}
		tracked = tracked || c.Tracked
	}
	if !tracked {
		errs = append(errs, errors.New("latency: no command is tracked"))
	}
	return errors.Join(errs...)
}

// Validate reports every problem with p, whose commands are t's.
func (p *ErrorParams) Validate(t *proto.Table) error {
	errs := []error{checkCommon("error", p.Window, p.Cooldown, p.MaxEvents)}
	if len(p.Rules) == 0 {
		errs = append(errs, errors.New("error: no rules"))
	}
	seen := make(map[string]bool, len(p.Rules))
	for i, r := range p.Rules {
		what := fmt.Sprintf("error rule %d (%q)", i, r.Name)
		if r.Name == "" {
			errs = append(errs, fmt.Errorf("%s: name is empty", what))
		} else if seen[r.Name] {
			errs = append(errs, fmt.Errorf("%s: duplicate name", what))
		}
		seen[r.Name] = true
		errs = append(errs, checkCount(what, r.AcceptableCount))
		if !r.Commands.SubsetOf(t.CommandSet()) {
			errs = append(errs, fmt.Errorf("%s: command set %v has codes that are not %ss", what, slices.Collect(r.Commands.All()), t.CommandNoun))
		}
		if slices.ContainsFunc(r.Errnos, func(e int32) bool { return e <= 0 }) {
			errs = append(errs, fmt.Errorf("%s: errno values must be positive, got %v", what, r.Errnos))
		}
	}
	return errors.Join(errs...)
}

// Validate reports every problem with p.
func (p *SockconnParams) Validate() error {
	errs := []error{checkCommon("sockconn", p.Window, p.Cooldown, p.MaxEvents)}
	if p.AcceptableCount != 0 {
		errs = append(errs, checkCount("sockconn", p.AcceptableCount))
	}
	return errors.Join(errs...)
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
