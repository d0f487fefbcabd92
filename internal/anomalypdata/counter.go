package anomalypdata

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/linuxdiag/aod/internal/anomaly"
)

// Metric is the anomaly counter's name, unit and description.
const (
	MetricName        = "aod.anomalies"
	MetricUnit        = "{anomaly}"
	MetricDescription = "Anomalies emitted by the detectors, by protocol, type and rule (repeats suppressed by the cooldown are not counted)."
)

// Key identifies one series of the anomaly counter.
type Key struct{ Protocol, Type, Rule string }

// Counter accumulates the anomaly counter as a cumulative sum. It is safe for
// concurrent use.
type Counter struct {
	mu     sync.Mutex
	start  time.Time
	counts map[Key]int64
}

// NewCounter starts a counter at start (the series' start time).
func NewCounter(start time.Time) *Counter {
	return &Counter{start: start, counts: make(map[Key]int64)}
}

// Declare makes the series of keys exist at zero, so that a rule that never fired is
// exported as 0 rather than missing.
func (c *Counter) Declare(keys ...Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if _, ok := c.counts[k]; !ok {
			c.counts[k] = 0
		}
	}
}

// Add counts anomalies.
func (c *Counter) Add(anomalies []anomaly.Anomaly) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range anomalies {
		a := &anomalies[i]
		c.counts[Key{a.Protocol, a.Type, a.Rule}]++
	}
}

// AppendTo appends the counter, as of now, to a metric slice.
func (c *Counter) AppendTo(metrics pmetric.MetricSlice, now time.Time) {
	c.mu.Lock()
	keys := make([]Key, 0, len(c.counts))
	for k := range c.counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b Key) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Type, b.Type), cmp.Compare(a.Rule, b.Rule))
	})
	values := make([]int64, len(keys))
	for i, k := range keys {
		values[i] = c.counts[k]
	}
	c.mu.Unlock()

	m := metrics.AppendEmpty()
	m.SetName(MetricName)
	m.SetUnit(MetricUnit)
	m.SetDescription(MetricDescription)
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dps := sum.DataPoints()
	dps.EnsureCapacity(len(keys))
	for i, k := range keys {
		dp := dps.AppendEmpty()
		dp.SetStartTimestamp(sinceOrZero(c.start))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(now))
		dp.SetIntValue(values[i])
		dp.Attributes().PutStr(AttrProtocol, k.Protocol)
		dp.Attributes().PutStr(AttrType, k.Type)
		dp.Attributes().PutStr(AttrRule, k.Rule)
	}
}

// Metrics returns the counter as of now under one resource, which gets a copy of
// resource's attributes.
func (c *Counter) Metrics(resource pcommon.Resource, now time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	resource.CopyTo(rm.Resource())
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(ScopeName)
	c.AppendTo(sm.Metrics(), now)
	return md
}

// sinceOrZero keeps timestamps of zero times at zero instead of the Unix epoch's
// negative offset.
func sinceOrZero(t time.Time) pcommon.Timestamp {
	if t.IsZero() {
		return 0
	}
	return pcommon.NewTimestampFromTime(t)
}
