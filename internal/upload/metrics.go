package upload

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The uploader's metrics, by destination. The agent builds them as pmetric
// (AppendMetrics); the collector exporter observes them through its meter
// (RegisterMetrics) and records the duration histogram as outcomes come
// (NewDurationRecorder). Names, units and attributes come from here for both.
const (
	MetricBundles  = "aod.upload.bundles"  // sum, by AttrDestination, AttrOutcome
	MetricFailures = "aod.upload.failures" // sum, by AttrDestination, AttrReason: failed attempts
	MetricPending  = "aod.upload.pending"  // gauge, by AttrDestination
	MetricBytes    = "aod.upload.bytes"    // sum, By, by AttrDestination
	MetricDuration = "aod.upload.duration" // histogram, s, by AttrDestination: bundles stored by this agent

	AttrDestination = "destination"
	AttrOutcome     = "outcome"
	AttrReason      = "reason"
)

// DurationBounds are the duration histogram's bucket bounds, in seconds: from a
// small bundle on a fast link to a large one under a bandwidth limit.
var DurationBounds = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// Histogram is a cumulative explicit-bucket histogram (len(Counts) =
// len(DurationBounds)+1).
type Histogram struct {
	Counts []uint64
	Sum    float64
	Count  uint64
}

// DestinationStats count one destination's uploads since start.
type DestinationStats struct {
	Name     string
	Outcomes map[string]uint64 // by OutcomeUploaded, ...
	Failures map[string]uint64 // failed attempts by ReasonAuth, ...
	Pending  int64             // bundles pending or in progress now
	Bytes    uint64            // bytes of bundles this agent stored
	Duration Histogram
}

// Stats are the uploader's counters.
type Stats struct {
	Started      time.Time
	Destinations []DestinationStats // by name
}

type counters struct {
	mu      sync.Mutex
	started time.Time
	dests   map[string]*DestinationStats
}

func newCounters() counters {
	return counters{started: time.Now(), dests: map[string]*DestinationStats{}}
}

func (c *counters) dest(name string) *DestinationStats {
	d, ok := c.dests[name]
	if !ok {
		d = &DestinationStats{Name: name, Outcomes: map[string]uint64{}, Failures: map[string]uint64{},
			Duration: Histogram{Counts: make([]uint64, len(DurationBounds)+1)}}
		c.dests[name] = d
	}
	return d
}

func (c *counters) failure(dest, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dest(dest).Failures[reason]++
}

func (c *counters) sent(dest string, bytes int64, created bool) {
	if !created {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dest(dest).Bytes += uint64(bytes)
}

// outcome counts a final state; the duration of bundles this agent stored goes
// into the histogram.
func (c *counters) outcome(dest, outcome string, took time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.dest(dest)
	d.Outcomes[outcome]++
	if outcome == OutcomeUploaded {
		s := took.Seconds()
		i, _ := slices.BinarySearch(DurationBounds, s)
		d.Duration.Counts[i]++
		d.Duration.Sum += s
		d.Duration.Count++
	}
}

// Stats returns the counters, every destination with every outcome and reason
// (zeros included, so a series exists before its first event).
func (u *Uploader) Stats() Stats {
	u.mu.Lock()
	pending := map[string]int64{}
	for _, e := range u.entries {
		if !e.State.Final() {
			pending[e.Dest]++
		}
	}
	u.mu.Unlock()
	c := &u.c
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Stats{Started: c.started}
	for _, n := range u.names {
		d := c.dest(n)
		ds := DestinationStats{Name: n, Outcomes: maps.Clone(d.Outcomes), Failures: maps.Clone(d.Failures),
			Pending: pending[n], Bytes: d.Bytes, Duration: d.Duration}
		ds.Duration.Counts = slices.Clone(d.Duration.Counts)
		for _, o := range outcomes {
			ds.Outcomes[o] += 0
		}
		for _, r := range reasons {
			ds.Failures[r] += 0
		}
		s.Destinations = append(s.Destinations, ds)
	}
	return s
}

var (
	outcomes = []string{OutcomeUploaded, OutcomeAlreadyPresent, OutcomeFailed, OutcomeLost, OutcomeSkipped}
	reasons  = []string{ReasonAuth, ReasonNotFound, ReasonThrottled, ReasonServer, ReasonClient, ReasonTimeout, ReasonNetwork, ReasonLocal}
)

const (
	descBundles  = "Bundles whose upload ended, by destination and outcome: uploaded, already_present, failed, lost (deleted before upload), skipped."
	descFailures = "Failed upload attempts, by destination and reason: auth, not_found, throttled, server, client, timeout, network, local."
	descPending  = "Bundles waiting for their upload (pending or in progress), by destination."
	descBytes    = "Bytes of bundles stored, by destination."
	descDuration = "Time to store one bundle (its last attempt), by destination."
)

// AppendMetrics appends s's metrics, as of now, to a metric slice of the caller's
// scope.
func AppendMetrics(dst pmetric.MetricSlice, s Stats, now time.Time) {
	ts, start := pcommon.NewTimestampFromTime(now), pcommon.NewTimestampFromTime(s.Started)
	sum := func(name, unit, desc string) pmetric.NumberDataPointSlice {
		m := dst.AppendEmpty()
		m.SetName(name)
		m.SetUnit(unit)
		m.SetDescription(desc)
		sm := m.SetEmptySum()
		sm.SetIsMonotonic(true)
		sm.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		return sm.DataPoints()
	}
	point := func(dps pmetric.NumberDataPointSlice, v int64, kv ...string) {
		dp := dps.AppendEmpty()
		dp.SetStartTimestamp(start)
		dp.SetTimestamp(ts)
		dp.SetIntValue(v)
		for i := 0; i+1 < len(kv); i += 2 {
			dp.Attributes().PutStr(kv[i], kv[i+1])
		}
	}
	bundles := sum(MetricBundles, "{bundle}", descBundles)
	failures := sum(MetricFailures, "{attempt}", descFailures)
	bytes := sum(MetricBytes, "By", descBytes)
	gm := dst.AppendEmpty()
	gm.SetName(MetricPending)
	gm.SetUnit("{bundle}")
	gm.SetDescription(descPending)
	pending := gm.SetEmptyGauge().DataPoints()
	hm := dst.AppendEmpty()
	hm.SetName(MetricDuration)
	hm.SetUnit("s")
	hm.SetDescription(descDuration)
	h := hm.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for _, d := range s.Destinations {
		for _, o := range slices.Sorted(maps.Keys(d.Outcomes)) {
			point(bundles, int64(d.Outcomes[o]), AttrDestination, d.Name, AttrOutcome, o)
		}
		for _, r := range slices.Sorted(maps.Keys(d.Failures)) {
			point(failures, int64(d.Failures[r]), AttrDestination, d.Name, AttrReason, r)
		}
		point(bytes, int64(d.Bytes), AttrDestination, d.Name)
		gp := pending.AppendEmpty()
		gp.SetTimestamp(ts)
		gp.SetIntValue(d.Pending)
		gp.Attributes().PutStr(AttrDestination, d.Name)
		hp := h.DataPoints().AppendEmpty()
		hp.SetStartTimestamp(start)
		hp.SetTimestamp(ts)
		hp.ExplicitBounds().FromRaw(DurationBounds)
		hp.BucketCounts().FromRaw(d.Duration.Counts)
		hp.SetSum(d.Duration.Sum)
		hp.SetCount(d.Duration.Count)
		hp.Attributes().PutStr(AttrDestination, d.Name)
	}
}

// RegisterMetrics reports the counters and the pending gauge (stats is an
// Uploader's Stats method) through a meter, for the collector exporter.
func RegisterMetrics(m metric.Meter, stats func() Stats) (metric.Registration, error) {
	b, err1 := m.Int64ObservableCounter(MetricBundles, metric.WithUnit("{bundle}"), metric.WithDescription(descBundles))
	f, err2 := m.Int64ObservableCounter(MetricFailures, metric.WithUnit("{attempt}"), metric.WithDescription(descFailures))
	by, err3 := m.Int64ObservableCounter(MetricBytes, metric.WithUnit("By"), metric.WithDescription(descBytes))
	p, err4 := m.Int64ObservableGauge(MetricPending, metric.WithUnit("{bundle}"), metric.WithDescription(descPending))
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, err
	}
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, d := range stats().Destinations {
			dest := attribute.String(AttrDestination, d.Name)
			for k, v := range d.Outcomes {
				o.ObserveInt64(b, int64(v), metric.WithAttributes(dest, attribute.String(AttrOutcome, k)))
			}
			for k, v := range d.Failures {
				o.ObserveInt64(f, int64(v), metric.WithAttributes(dest, attribute.String(AttrReason, k)))
			}
			o.ObserveInt64(by, int64(d.Bytes), metric.WithAttributes(dest))
			o.ObserveInt64(p, d.Pending, metric.WithAttributes(dest))
		}
		return nil
	}, b, f, by, p)
}

// NewDurationRecorder returns an OnOutcome function recording the duration
// histogram through a meter, for the collector exporter, and then calling next
// (if not nil).
func NewDurationRecorder(m metric.Meter, next func(Outcome)) (func(Outcome), error) {
	h, err := m.Float64Histogram(MetricDuration, metric.WithUnit("s"), metric.WithDescription(descDuration),
		metric.WithExplicitBucketBoundaries(DurationBounds...))
	if err != nil {
		return nil, err
	}
	return func(o Outcome) {
		if o.Outcome == OutcomeUploaded {
			h.Record(context.Background(), o.Duration.Seconds(), metric.WithAttributes(attribute.String(AttrDestination, o.Destination)))
		}
		if next != nil {
			next(o)
		}
	}, nil
}
