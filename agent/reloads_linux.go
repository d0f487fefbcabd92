package agent

import (
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// The agent's reload counter (docs/metrics.md): Prometheus reads it as
// aod_config_reloads_total{result="success"|"failure"}.
const (
	metricReloads    = "aod.config.reloads"
	attrReloadResult = "result"
	// scopeName is the agent's own instrumentation scope.
	scopeName = "github.com/linuxdiag/aod/agent"
)

// reloadCounter counts configuration reloads (SIGHUP) by outcome since the agent
// started.
type reloadCounter struct {
	start            time.Time
	success, failure atomic.Uint64
}

func (r *reloadCounter) count(ok bool) {
	if ok {
		r.success.Add(1)
	} else {
		r.failure.Add(1)
	}
}

// metrics returns the counter under a copy of resource, both outcomes from the
// start so that a failure shows as a change from 0.
func (r *reloadCounter) metrics(resource pcommon.Resource, now time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	resource.CopyTo(rm.Resource())
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(scopeName)
	m := sm.Metrics().AppendEmpty()
	m.SetName(metricReloads)
	m.SetUnit("{reload}")
	m.SetDescription("Configuration reloads (SIGHUP) by result: success, or failure (the file was refused or could not be applied; the running configuration stayed).")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for _, p := range []struct {
		result string
		n      uint64
	}{{"success", r.success.Load()}, {"failure", r.failure.Load()}} {
		dp := sum.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(r.start))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(now))
		dp.SetIntValue(int64(p.n))
		dp.Attributes().PutStr(attrReloadResult, p.result)
	}
	return md
}
