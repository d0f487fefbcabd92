package otelconv

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/cifsproc"
	"github.com/linuxdiag/aod/internal/latencyhist"
	"github.com/linuxdiag/aod/internal/nfsproc"
	"github.com/linuxdiag/aod/internal/podattr"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/ringreader"
)

// HistogramForm selects how smb.client.operation.duration is exported.
type HistogramForm uint8

const (
	// Exponential is the OTel exponential histogram at scale 2: the kernel's buckets
	// exactly, for OTLP.
	Exponential HistogramForm = iota
	// Explicit is a classic histogram with latencyhist.PrometheusBounds, every bound a
	// kernel bucket edge, for Prometheus scrapes that cannot take exponential ones.
	Explicit
)

// ProgramStats is one BPF program's run statistics.
type ProgramStats struct {
	Name string
	// RunTime and RunCount are counted only while the kernel times BPF programs
	// (Snapshot.ProgramsTimed).
	RunTime  time.Duration
	RunCount uint64
	// Skipped counts the runs the kernel skipped because the program was already running
	// on that CPU (counted always, Linux 5.12+): each is an event the program never saw.
	Skipped uint64
}

// Snapshot is one read of everything the metrics are built from.
type Snapshot struct {
	Time      time.Time
	Latencies []bpf.HistogramSample
	Errors    []bpf.ErrorSample
	Kernel    bpf.Counters
	InFlight  int            // requests in the kernel's start map
	Programs  []ProgramStats // every loaded program
	// ProgramsTimed says the kernel counted the programs' run time and runs
	// (kernel.bpf_stats_enabled = 1).
	ProgramsTimed bool
	Reader        ringreader.Stats
	RingUsed      int // unread bytes in the ring buffer
	RingSize      int
	// Stats is /proc/fs/cifs/Stats, nil when it could not be read (cifs not loaded).
	Stats *cifsproc.Stats
	// DebugDataErrors and StatsErrors count failed reads and unclean parses of the two
	// /proc/fs/cifs files since start.
	DebugDataErrors uint64
	StatsErrors     uint64
	// NFSMounts are the nfs and nfs4 mounts of /proc/self/mountstats (none when there
	// are none or it could not be read); MountStatsErrors counts its failed reads and
	// unclean parses since start.
	NFSMounts        []nfsproc.Mount
	MountStatsErrors uint64
	// Hooks are the loaded programs' hooks (ingest.Receiver.Hooks), attached or not.
	Hooks []bpf.HookStatus
}

// Metrics keeps the cumulative state of the exported metrics between snapshots. Use it
// from one goroutine: Update with each snapshot, then Build once per form wanted.
type Metrics struct {
	names      Resolver
	work       workloadOf        // nil: series are per share, not per workload
	start      pcommon.Timestamp // the kernel maps' and the receiver's counters start here
	statsStart pcommon.Timestamp // default start of the cifs Stats counters
	version    string

	lat    *latencies
	errs   *errorCounts
	cum    *cumulative
	mounts mountStarts
	last   *Snapshot
	now    pcommon.Timestamp

	promBuckets []uint64 // scratch for the explicit fold
}

// NewMetrics returns an empty state. start is when the BPF maps were created (the start
// of every request and self metric); statsStart is when the cifs Stats counters are
// taken to have started counting when the kernel does not say (the boot time, as the
// host metrics receiver does).
func NewMetrics(names Resolver, start, statsStart time.Time, version string) *Metrics {
	return &Metrics{
		names:      names,
		start:      pcommon.NewTimestampFromTime(start),
		statsStart: pcommon.NewTimestampFromTime(statsStart),
		version:    version,
		lat:        newLatencies(),
		errs:       newErrorCounts(),
		cum:        newCumulative(),
	}
}

// SetCardinalityLimit bounds each request metric (a protocol's duration histogram,
// its error counter) to limit series: past limit-1, new series fold into one series
// with only otel.metric.overflow=true, and aod.metric.overflow.series counts them.
// 0 (the default) sets no limit. Call it before the first Update.
func (m *Metrics) SetCardinalityLimit(limit int) {
	m.lat.limit, m.errs.limit = limit, limit
}

// SetWorkloads makes the request series per workload too: entries the probes count
// per issuer cgroup (bpf.Probes.SetPerCgroup) go to series with the pod and container
// (or container, or systemd unit) w names for their cgroup. Call it before the first
// Update. Without it the series are per share, whatever the probes count.
func (m *Metrics) SetWorkloads(w Workloads) {
	m.work = func(id uint64) podattr.Workload {
		wl, _ := w.Lookup(id)
		return wl
	}
}

// Update folds a snapshot into the state. The snapshot must not change until the next
// Update.
func (m *Metrics) Update(s *Snapshot) {
	m.lat.update(s.Latencies, m.names, m.work)
	m.errs.update(s.Errors, m.names, m.work)
	m.cum.advance(pcommon.NewTimestampFromTime(s.Time))
	m.last = s
	m.now = pcommon.NewTimestampFromTime(s.Time)
}

// ForgetSessions drops what the state remembers of the kernel entries of p's sessions
// for which keep returns false, after those entries were deleted from the kernel maps:
// an entry re-created under the same key then counts from zero. The exported series
// keep their counts. Other protocols' entries are left alone: their ids are not p's.
func (m *Metrics) ForgetSessions(p proto.Protocol, keep func(sessionID uint64) bool) {
	for k := range m.lat.prev {
		if k.protocol == p && !keep(k.session) {
			delete(m.lat.prev, k)
		}
	}
	for k := range m.errs.prev {
		if k.protocol == p && !keep(k.session) {
			delete(m.errs.prev, k)
		}
	}
}

// Build returns every metric as of the last Update, with the duration histogram in the
// given form. Calling it again, in the other form, returns the same series.
func (m *Metrics) Build(form HistogramForm) pmetric.Metrics {
	md := pmetric.NewMetrics()
	sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(ScopeName)
	sm.Scope().SetVersion(m.version)
	b := builder{ms: sm.Metrics(), start: m.start, now: m.now}
	m.buildDurations(&b, form)
	m.buildErrors(&b)
	if m.last != nil {
		if m.last.Stats != nil {
			m.buildStats(&b, m.last.Stats)
		}
		m.buildMountStats(&b, m.last.NFSMounts)
		m.buildSelf(&b, m.last)
	}
	m.cum.sweep()
	m.mounts.sweep()
	return md
}

// protocols returns the protocols of series, in ascending order: each gets its own
// pair of request metrics.
func protocols(series []requestSeries) []proto.Protocol {
	var set [256]bool
	for _, s := range series {
		set[s.protocol] = true
	}
	var ps []proto.Protocol
	for p, ok := range set {
		if ok {
			ps = append(ps, proto.Protocol(p))
		}
	}
	return ps
}

func (m *Metrics) buildDurations(b *builder, form HistogramForm) {
	for _, p := range protocols(m.lat.order) {
		m.buildDuration(b, form, proto.TableOf(p))
	}
}

// buildDuration builds the duration histogram of t's protocol.
func (m *Metrics) buildDuration(b *builder, form HistogramForm, t *proto.Table) {
	metric := b.ms.AppendEmpty()
	metric.SetName(t.Keys.Duration)
	metric.SetUnit("s")
	metric.SetDescription(t.DurationHelp)
	switch form {
	case Explicit:
		h := metric.SetEmptyHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dps := h.DataPoints()
		dps.EnsureCapacity(len(m.lat.order))
		bounds := latencyhist.PrometheusBounds()
		for _, key := range m.lat.order {
			if key.protocol != t.Protocol {
				continue
			}
			s := m.lat.series[key]
			dp := dps.AppendEmpty()
			b.times(dp)
			requestAttrs(dp.Attributes(), key)
			m.promBuckets = latencyhist.FoldPrometheus(s.zero, &s.buckets, m.promBuckets)
			dp.ExplicitBounds().FromRaw(bounds)
			dp.BucketCounts().FromRaw(m.promBuckets)
			dp.SetCount(s.count())
			dp.SetSum(float64(s.sumNs) / 1e9)
		}
	default:
		h := metric.SetEmptyExponentialHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dps := h.DataPoints()
		dps.EnsureCapacity(len(m.lat.order))
		for _, key := range m.lat.order {
			if key.protocol != t.Protocol {
				continue
			}
			s := m.lat.series[key]
			dp := dps.AppendEmpty()
			b.times(dp)
			requestAttrs(dp.Attributes(), key)
			dp.SetScale(latencyhist.Scale)
			dp.SetZeroThreshold(latencyhist.ZeroThreshold())
			dp.SetZeroCount(s.zero)
			dp.SetCount(s.count())
			dp.SetSum(float64(s.sumNs) / 1e9)
			if lo, hi, ok := s.nonZero(); ok {
				dp.Positive().SetOffset(latencyhist.OTelIndex(lo))
				dp.Positive().BucketCounts().FromRaw(s.buckets[lo : hi+1])
			}
		}
	}
}

func (m *Metrics) buildErrors(b *builder) {
	for _, p := range protocols(m.errs.order) {
		t := proto.TableOf(p)
		dps := b.sum(t.Keys.Errors, "{error}", t.ErrorsHelp)
		dps.EnsureCapacity(len(m.errs.order))
		for _, key := range m.errs.order {
			if key.protocol == p {
				m.buildError(b, dps, key)
			}
		}
	}
}

// buildError appends the point of one failure series.
func (m *Metrics) buildError(b *builder, dps pmetric.NumberDataPointSlice, key requestSeries) {
	dp := dps.AppendEmpty()
	b.times(dp)
	dp.SetIntValue(int64(*m.errs.series[key]))
	requestAttrs(dp.Attributes(), key)
}

// requestAttrs puts a request series' attributes: error.type only on series of failed
// requests (the kernel reports every failure with a non-zero status).
func requestAttrs(attrs pcommon.Map, key requestSeries) {
	if key.overflow {
		attrs.PutBool(AttrOverflow, true)
		return
	}
	t := proto.TableOf(key.protocol)
	k := &t.Keys
	attrs.EnsureCapacity(8)
	attrs.PutStr(k.Command, proto.Command{Protocol: key.protocol, Code: key.command}.String())
	if key.status != 0 {
		attrs.PutStr(AttrErrorType, proto.Status{Protocol: key.protocol, Code: key.status}.String())
	}
	attrs.PutStr(k.Server, key.server)
	attrs.PutStr(k.Share, key.share)
	key.workload.Attributes(attrs.PutStr)
	// RPC protocols also name the call as OpenTelemetry's RPC conventions do, so the
	// series join the kernel's per-operation mountstats counters.
	if t.ONCRPC != nil {
		if program, version, procedure, ok := t.ONCRPC(key.command); ok {
			attrs.PutStr(AttrRPCSystem, rpcSystemONC)
			attrs.PutStr(AttrONCProgram, program)
			attrs.PutInt(AttrONCVersion, int64(version))
			attrs.PutStr(AttrONCProcedure, procedure)
		}
	}
}

func (s *latencyState) count() uint64 {
	n := s.zero
	for _, c := range s.buckets {
		n += c
	}
	return n
}

// nonZero returns the first and last kernel buckets holding requests.
func (s *latencyState) nonZero() (lo, hi int, ok bool) {
	lo, hi = -1, -1
	for j, c := range s.buckets {
		if c == 0 {
			continue
		}
		if lo < 0 {
			lo = j
		}
		hi = j
	}
	return lo, hi, lo >= 0
}

// builder appends metrics to one scope.
type builder struct {
	ms         pmetric.MetricSlice
	start, now pcommon.Timestamp
}

type timed interface {
	SetStartTimestamp(pcommon.Timestamp)
	SetTimestamp(pcommon.Timestamp)
}

func (b *builder) times(dp timed) {
	dp.SetStartTimestamp(b.start)
	dp.SetTimestamp(b.now)
}

// sum appends a cumulative monotonic sum and returns its points.
func (b *builder) sum(name, unit, desc string) pmetric.NumberDataPointSlice {
	m := b.ms.AppendEmpty()
	m.SetName(name)
	m.SetUnit(unit)
	m.SetDescription(desc)
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	return s.DataPoints()
}

// gauge appends a gauge and returns its points.
func (b *builder) gauge(name, unit, desc string) pmetric.NumberDataPointSlice {
	m := b.ms.AppendEmpty()
	m.SetName(name)
	m.SetUnit(unit)
	m.SetDescription(desc)
	return m.SetEmptyGauge().DataPoints()
}

// counter appends one point of a sum whose start is the receiver's.
func (b *builder) counter(dps pmetric.NumberDataPointSlice, v uint64, kv ...string) {
	dp := dps.AppendEmpty()
	b.times(dp)
	dp.SetIntValue(int64(v))
	putAttrs(dp.Attributes(), kv)
}

// level appends one gauge point.
func (b *builder) level(dps pmetric.NumberDataPointSlice, v int64, kv ...string) {
	dp := dps.AppendEmpty()
	dp.SetTimestamp(b.now)
	dp.SetIntValue(v)
	putAttrs(dp.Attributes(), kv)
}

func putAttrs(attrs pcommon.Map, kv []string) {
	if len(kv) == 0 {
		return
	}
	attrs.EnsureCapacity(len(kv) / 2)
	for i := 0; i+1 < len(kv); i += 2 {
		attrs.PutStr(kv[i], kv[i+1])
	}
}
