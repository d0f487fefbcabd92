package bundler

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ScopeName is the instrumentation scope of the bundler's spans and metrics (and the
// upload's records), in the agent and in the collector connector alike. It keeps
// the name it had when the collector component was an exporter, which queries and
// dashboards may name.
const ScopeName = "github.com/linuxdiag/aod/exporter"

// The bundler's own metrics. The agent builds them as pmetric (Metrics), the
// collector connector reports them through its meter (RegisterMetrics); both come
// from the same table, so the names, units and attributes cannot drift apart.
const (
	MetricBundles               = "aod.bundles"                 // sum, by AttrOutcome
	MetricWrittenBytes          = "aod.bundle.written_bytes"    // sum, By
	MetricShrunk                = "aod.bundles.shrunk"          // sum
	MetricRetentionDeletions    = "aod.retention.deletions"     // sum, by AttrKind
	MetricRetentionDeletedBytes = "aod.retention.deleted_bytes" // sum, By
	MetricDiskUsage             = "aod.bundle.disk.usage"       // gauge, By
	MetricDiskLimit             = "aod.bundle.disk.limit"       // gauge, By

	// AttrOutcome says what became of a bundle: OutcomeWritten, ...
	AttrOutcome = "outcome"
	// AttrKind says what retention deleted: KindBundle or KindTemporary.
	AttrKind = "kind"
)

// Values of AttrOutcome and AttrKind.
const (
	OutcomeWritten         = "written"
	OutcomeFailed          = "failed"
	OutcomeSkippedBusy     = "skipped_busy"
	OutcomeSkippedLowSpace = "skipped_low_space"
	KindBundle             = "bundle"    // deleted by age or size
	KindTemporary          = "temporary" // left by an interrupted bundle
)

type metricDesc struct {
	name, unit, description string
	gauge                   bool // otherwise a cumulative, monotonic sum
}

// Indexes of metricDescs.
const (
	mBundles = iota
	mWrittenBytes
	mShrunk
	mDeletions
	mDeletedBytes
	mDiskUsage
	mDiskLimit
	numMetrics
)

var metricDescs = [numMetrics]metricDesc{
	mBundles: {MetricBundles, "{bundle}",
		"Bundles by outcome: written, failed, skipped_busy, skipped_low_space.", false},
	mWrittenBytes: {MetricWrittenBytes, "By", "Bytes of bundles written.", false},
	mShrunk: {MetricShrunk, "{bundle}",
		"Bundles written with smaller action limits to keep the free-space floor.", false},
	mDeletions: {MetricRetentionDeletions, "{file}",
		"Files retention deleted: kind bundle (age or size) or temporary (left by an interrupted bundle).", false},
	mDeletedBytes: {MetricRetentionDeletedBytes, "By", "Bytes retention freed.", false},
	mDiskUsage: {MetricDiskUsage, "By",
		"Disk space the bundles (and bundles in progress) use, as of the last retention sweep.", true},
	mDiskLimit: {MetricDiskLimit, "By",
		"The bundles' size limit (max_total_log_size_mb); retention prunes above 97 % of it. Absent without a limit.", true},
}

// point is one data point: a metric, its one attribute (if any) and its value.
type point struct {
	metric     int
	key, value string
	v          int64
}

// points lists the data points of s, in metricDescs order. The disk gauges are left
// out while they are unknown (before the first sweep) or unset (no limit).
func (s Stats) points() []point {
	r := s.Retention
	ps := []point{
		{mBundles, AttrOutcome, OutcomeWritten, int64(s.Bundles)},
		{mBundles, AttrOutcome, OutcomeFailed, int64(s.Failed)},
		{mBundles, AttrOutcome, OutcomeSkippedBusy, int64(s.SkippedBusy)},
		{mBundles, AttrOutcome, OutcomeSkippedLowSpace, int64(s.SkippedLowSpace)},
		{mWrittenBytes, "", "", int64(s.BundleBytes)},
		{mShrunk, "", "", int64(s.Shrunk)},
		{mDeletions, AttrKind, KindBundle, int64(r.Deleted)},
		{mDeletions, AttrKind, KindTemporary, int64(r.TempsRemoved)},
		{mDeletedBytes, "", "", int64(r.DeletedBytes + r.TempsRemovedSize)},
	}
	if r.Measured {
		ps = append(ps, point{mDiskUsage, "", "", r.TotalBytes})
	}
	if s.DiskLimit > 0 {
		ps = append(ps, point{mDiskLimit, "", "", s.DiskLimit})
	}
	return ps
}

// Metrics returns s as pmetric under one resource, which gets a copy of resource's
// attributes, for the standalone agent. The sums are cumulative from s.Started; a
// Bundler that replaces another on a configuration reload (Options.Previous) counts on
// from the same values and start.
func Metrics(s Stats, resource pcommon.Resource, now time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	resource.CopyTo(rm.Resource())
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(ScopeName)
	AppendMetrics(sm.Metrics(), s, now)
	return md
}

// AppendMetrics appends s's metrics, as of now, to a metric slice of the caller's
// scope.
func AppendMetrics(dst pmetric.MetricSlice, s Stats, now time.Time) {
	ts := pcommon.NewTimestampFromTime(now)
	var start pcommon.Timestamp
	if !s.Started.IsZero() {
		start = pcommon.NewTimestampFromTime(s.Started)
	}
	var (
		dps     [numMetrics]pmetric.NumberDataPointSlice
		created [numMetrics]bool
	)
	for _, p := range s.points() {
		if !created[p.metric] {
			created[p.metric] = true
			d := metricDescs[p.metric]
			m := dst.AppendEmpty()
			m.SetName(d.name)
			m.SetUnit(d.unit)
			m.SetDescription(d.description)
			if d.gauge {
				dps[p.metric] = m.SetEmptyGauge().DataPoints()
			} else {
				sum := m.SetEmptySum()
				sum.SetIsMonotonic(true)
				sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
				dps[p.metric] = sum.DataPoints()
			}
		}
		dp := dps[p.metric].AppendEmpty()
		if !metricDescs[p.metric].gauge {
			dp.SetStartTimestamp(start)
		}
		dp.SetTimestamp(ts)
		dp.SetIntValue(p.v)
		if p.key != "" {
			dp.Attributes().PutStr(p.key, p.value)
		}
	}
}

// RegisterMetrics reports stats (a Bundler's Stats method) through a meter, for the
// collector connector, whose meter provider adds the start times.
func RegisterMetrics(m metric.Meter, stats func() Stats) (metric.Registration, error) {
	var (
		instruments [numMetrics]metric.Int64Observable
		observables = make([]metric.Observable, numMetrics)
		errs        []error
	)
	for i, d := range metricDescs {
		var err error
		if d.gauge {
			instruments[i], err = m.Int64ObservableGauge(d.name, metric.WithUnit(d.unit), metric.WithDescription(d.description))
		} else {
			instruments[i], err = m.Int64ObservableCounter(d.name, metric.WithUnit(d.unit), metric.WithDescription(d.description))
		}
		observables[i] = instruments[i]
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, p := range stats().points() {
			var opts []metric.ObserveOption
			if p.key != "" {
				opts = append(opts, metric.WithAttributes(attribute.String(p.key, p.value)))
			}
			o.ObserveInt64(instruments[p.metric], p.v, opts...)
		}
		return nil
	}, observables...)
}
