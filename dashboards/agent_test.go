package dashboards

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/configs"
	"github.com/linuxdiag/aod/exporter/aodbundleexporter"
	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/latencyhist"
	"github.com/linuxdiag/aod/internal/smb"
	"github.com/linuxdiag/aod/internal/smbevent"
	"github.com/linuxdiag/aod/internal/telemetry"
	"github.com/linuxdiag/aod/processor/anomalypdata"
	"github.com/linuxdiag/aod/processor/detector"
	"github.com/linuxdiag/aod/receiver/cifsproc"
	"github.com/linuxdiag/aod/receiver/smbotel"
	"github.com/linuxdiag/aod/receiver/wallclock"
)

// The session and trees of testdata/DebugData, a real /proc/fs/cifs/DebugData of
// kernel 6.12 mounting \\127.0.0.1\share.
const (
	testSession = 0x936c11ff
	shareTree   = 0x53dfe4a  // \\127.0.0.1\share
	ipcTree     = 0x5022a236 // \\127.0.0.1\IPC$
	noTree      = 0          // NEGOTIATE, SESSION_SETUP, ECHO: no share
)

// load is one kind of SMB request a simulated host completes at every step.
type load struct {
	cmd       uint16
	tree      uint32
	n         int             // requests per step
	latencies []time.Duration // cycled through
	status    uint32          // NTSTATUS of every failEvery-th request
	failEvery int
}

func status(t *testing.T, name string) uint32 {
	t.Helper()
	s, ok := smb.LookupStatus(name)
	if !ok {
		t.Fatalf("unknown NTSTATUS %s", name)
	}
	return s
}

const us, ms = time.Microsecond, time.Millisecond

// healthyLoad is ordinary traffic: fast requests, and only the failures every
// workload produces (end of file, end of listing, names that do not exist).
func healthyLoad(t *testing.T) []load {
	return []load{
		{cmd: smb.Read, tree: shareTree, n: 40, latencies: []time.Duration{300 * us, 800 * us, 2 * ms, 5 * ms, 12 * ms},
			status: status(t, "STATUS_END_OF_FILE"), failEvery: 20},
		{cmd: smb.Write, tree: shareTree, n: 30, latencies: []time.Duration{500 * us, time.Millisecond, 3 * ms, 8 * ms}},
		{cmd: smb.Create, tree: shareTree, n: 20, latencies: []time.Duration{400 * us, 900 * us, 2 * ms},
			status: status(t, "STATUS_OBJECT_NAME_NOT_FOUND"), failEvery: 5},
		{cmd: smb.Close, tree: shareTree, n: 20, latencies: []time.Duration{200 * us, 500 * us}},
		{cmd: smb.QueryInfo, tree: shareTree, n: 20, latencies: []time.Duration{300 * us, 700 * us}},
		{cmd: smb.QueryDirectory, tree: shareTree, n: 4, latencies: []time.Duration{time.Millisecond, 3 * ms},
			status: status(t, "STATUS_NO_MORE_FILES"), failEvery: 2},
		{cmd: smb.Ioctl, tree: ipcTree, n: 1, latencies: []time.Duration{600 * us}},
		{cmd: smb.Echo, tree: noTree, n: 1, latencies: []time.Duration{150 * us}},
	}
}

// troubledLoad is what a sick server adds: reads slower than the latency ceiling, and
// creates failing because the server dropped the share.
func troubledLoad(t *testing.T) []load {
	return []load{
		{cmd: smb.Read, tree: shareTree, n: 10, latencies: []time.Duration{700 * ms, 1200 * ms}},
		{cmd: smb.Create, tree: shareTree, n: 30, latencies: []time.Duration{2 * ms},
			status: status(t, "STATUS_NETWORK_NAME_DELETED"), failEvery: 1},
	}
}

type histKey struct {
	cmd  uint16
	tree uint32
}

type errKey struct {
	cmd    uint16
	tree   uint32
	status uint32
}

// host is one simulated aod agent. Only the kernel is simulated: the BPF maps'
// contents (latency histograms bucketed by latencyhist.BucketOf exactly as the kernel
// buckets them, failure counts, loss counters) and the events it would write to the
// ring. Everything after that is aod's own code: the receiver's metric builders over
// a real /proc/fs/cifs (DebugData names the shares, Stats is parsed and advanced like
// the kernel advances it), the detectors of the default configuration, the anomaly
// counter, the bundle exporter, and the telemetry package serving /metrics with the
// collector's Prometheus exporter.
type host struct {
	t        *testing.T
	name     string
	addr     string // host:port of /metrics
	loads    []load
	trouble  []load
	troubled atomic.Bool

	sinks     *telemetry.Sinks
	metrics   *smbotel.Metrics
	stats     *cifsproc.Stats
	detectors *detector.Set
	params    detector.Params
	anomalies *anomalypdata.Counter
	bundles   exporter.Traces
	bundleMR  *sdkmetric.ManualReader

	hist     map[histKey]*bpf.HistogramSample
	errs     map[errKey]*bpf.ErrorSample
	kernel   bpf.Counters
	read     uint64
	programs []smbotel.ProgramStats
	step     int

	stop chan struct{}
	done sync.WaitGroup
}

// startHost starts a simulated agent serving /metrics on a free loopback port and
// completing traffic every interval. minFreeMB is its bundle exporter's free-space
// floor (bundle.min_free_mb).
func startHost(t *testing.T, name string, loads, trouble []load, minFreeMB float64, interval time.Duration) *host {
	t.Helper()
	ctx := context.Background()
	dd, err := os.ReadFile("testdata/DebugData")
	if err != nil {
		t.Fatal(err)
	}
	rawStats, err := os.ReadFile("testdata/Stats")
	if err != nil {
		t.Fatal(err)
	}
	stats, err := cifsproc.ParseStats(rawStats)
	if err != nil {
		t.Fatal(err)
	}
	names := cifsproc.NewShareNames(func() ([]byte, error) { return dd, nil }, time.Second)

	cfg, _, err := config.Parse(configs.DefaultName, configs.Default)
	if err != nil {
		t.Fatal(err)
	}
	params := detector.FromConfig(cfg)
	set, err := detector.New(params, detector.Env{
		Clock: detector.SystemClock{Converter: wallclock.New(time.Minute)},
		Share: detector.SharesFrom(names.Lookup),
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	counter := anomalypdata.NewCounter(now)
	for _, r := range set.Rules() {
		counter.Declare(anomalypdata.Key{Protocol: "smb", Type: r.Type, Rule: r.Rule})
	}

	h := &host{
		t: t, name: name, addr: freeAddr(t), loads: loads, trouble: trouble,
		metrics: smbotel.NewMetrics(names, now, now.Add(-time.Hour), "test"),
		stats:   stats, detectors: set, params: params, anomalies: counter,
		hist: map[histKey]*bpf.HistogramSample{}, errs: map[errKey]*bpf.ErrorSample{},
		programs: []smbotel.ProgramStats{{Name: "aod_cmd_enter"}, {Name: "aod_cmd_done"}, {Name: "aod_cmd_err"}},
		stop:     make(chan struct{}),
	}

	// The bundle exporter, as the collector builds it, reporting through an SDK meter.
	f := aodbundleexporter.NewFactory()
	bcfg := f.CreateDefaultConfig().(*aodbundleexporter.Config)
	bcfg.OutputDir = t.TempDir()
	bcfg.Actions = map[string]map[string][]string{"smb": {
		anomaly.TypeLatency: {"mounts"}, anomaly.TypeError: {"mounts"}, anomaly.TypeSockconn: {"mounts"}}}
	bcfg.MinFreeMB = minFreeMB
	h.bundleMR = sdkmetric.NewManualReader()
	bset := exportertest.NewNopSettings(aodbundleexporter.Type)
	bset.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(h.bundleMR))
	if h.bundles, err = f.CreateTraces(ctx, bset, bcfg); err != nil {
		t.Fatal(err)
	}
	if err := h.bundles.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}

	// The agent's resource names the host in service.instance.id, which the Prometheus
	// exporter serves as the instance label.
	h.sinks, err = telemetry.New(ctx, telemetry.Options{PrometheusListen: h.addr,
		Resource: map[string]string{"service.name": "aod", "service.instance.id": name}})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.sinks.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The first collection is served before anyone scrapes.
	h.collect(time.Now())

	h.done.Add(1)
	go func() {
		defer h.done.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-h.stop:
				return
			case now := <-tick.C:
				h.collect(now)
			}
		}
	}()
	t.Cleanup(func() {
		close(h.stop)
		h.done.Wait()
		ctx := context.Background()
		if err := h.bundles.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := h.sinks.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return h
}

// startTrouble makes the host's server sick from its next step on.
func (h *host) startTrouble() { h.troubled.Store(true) }

// collect completes one step of traffic and exports what the agent would.
func (h *host) collect(now time.Time) {
	h.step++
	trouble := h.troubled.Load()
	loads := h.loads
	if trouble {
		loads = append(loads[:len(loads):len(loads)], h.trouble...)
	}
	events := h.complete(loads)
	h.advanceStats(loads, trouble)
	if trouble {
		h.kernel.RingReserveFailures += 5
	}

	var found []anomaly.Anomaly
	found = h.detectors.Process(events, found)
	if len(found) > 0 {
		h.anomalies.Add(found)
		if err := h.bundles.ConsumeTraces(context.Background(), anomalypdata.Traces(pcommon.NewResource(), found)); err != nil {
			h.t.Errorf("%s: bundle exporter: %v", h.name, err)
		}
	}

	snap := &smbotel.Snapshot{
		Time: now, Kernel: h.kernel, Programs: h.programs, Stats: h.stats,
		RingSize: bpf.DefaultRingBytes, RingUsed: 4096,
		InFlight: 2,
	}
	if trouble {
		snap.RingUsed, snap.InFlight = bpf.DefaultRingBytes*7/10, 40
	}
	snap.Reader.Read, snap.Reader.Delivered = h.read, h.read
	for _, s := range h.hist {
		snap.Latencies = append(snap.Latencies, *s)
	}
	for _, e := range h.errs {
		snap.Errors = append(snap.Errors, *e)
	}
	h.metrics.Update(snap)
	md := h.metrics.Build(smbotel.Explicit)
	sm := md.ResourceMetrics().At(0).ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(anomalypdata.ScopeName)
	h.anomalies.AppendTo(sm.Metrics(), now)
	h.appendBundleMetrics(md.ResourceMetrics().At(0).ScopeMetrics().AppendEmpty())
	if err := h.sinks.ExportMetrics(context.Background(), pmetric.NewMetrics(), md); err != nil {
		h.t.Errorf("%s: export: %v", h.name, err)
	}
}

// complete runs the requests of one step through the simulated kernel and returns the
// events it would write to the ring: slow requests (at or over their command's
// threshold in the configuration) and failures.
func (h *host) complete(loads []load) []smbevent.Event {
	var events []smbevent.Event
	end := wallclock.Monotonic()
	for _, l := range loads {
		for i := range l.n {
			lat := l.latencies[(h.step+i)%len(l.latencies)]
			ns := uint64(lat.Nanoseconds())
			hk := histKey{l.cmd, l.tree}
			s := h.hist[hk]
			if s == nil {
				s = &bpf.HistogramSample{Command: l.cmd, SessionID: testSession, TreeID: l.tree}
				h.hist[hk] = s
			}
			if j, zero := latencyhist.BucketOf(ns); zero {
				s.ZeroCount++
			} else {
				s.Buckets[j]++
			}
			s.Count++
			s.SumNs += ns

			ev := smbevent.Event{Command: l.cmd, SessionID: testSession, TreeID: l.tree, Pid: 4242, Tgid: 4242,
				MessageID: uint64(h.step*1000 + i), StartNs: end - ns, EndNs: end}
			copy(ev.Comm[:], "fio")
			th := h.params.Latency.Commands[l.cmd]
			switch {
			case l.failEvery > 0 && i%l.failEvery == 0:
				ek := errKey{l.cmd, l.tree, l.status}
				e := h.errs[ek]
				if e == nil {
					e = &bpf.ErrorSample{Command: l.cmd, SessionID: testSession, TreeID: l.tree, Status: l.status}
					h.errs[ek] = e
				}
				e.Count++
				ev.Kind, ev.Status, ev.Rc = smbevent.KindError, l.status, -5
				events = append(events, ev)
			case th.Tracked && lat >= th.Threshold:
				ev.Kind = smbevent.KindSlow
				events = append(events, ev)
			default:
				h.kernel.EventsFiltered++
			}
		}
		for p := range h.programs {
			h.programs[p].RunCount += uint64(l.n)
			h.programs[p].RunTime += time.Duration(l.n) * 300 * time.Nanosecond
		}
	}
	h.kernel.EventsEmitted += uint64(len(events))
	h.read += uint64(len(events))
	return events
}

// advanceStats moves the /proc/fs/cifs/Stats counters as the kernel would for a step.
func (h *host) advanceStats(loads []load, trouble bool) {
	sh := &h.stats.Servers[0].Shares[0]
	for _, l := range loads {
		if l.tree != shareTree {
			continue
		}
		sh.SMBs += int64(l.n)
		switch l.cmd {
		case smb.Read:
			sh.BytesRead += int64(l.n) << 16
		case smb.Write:
			sh.BytesWritten += int64(l.n) << 16
		}
	}
	h.stats.VFSOperations += 50
	if trouble {
		h.stats.SessionReconnects++
		h.stats.ShareReconnects++
		sh.Disconnected = true
	}
}

// appendBundleMetrics adds the bundle exporter's own metrics, which it reports through
// its MeterProvider, to the export: the agent serves them on the same endpoint.
func (h *host) appendBundleMetrics(sm pmetric.ScopeMetrics) {
	var rm metricdata.ResourceMetrics
	if err := h.bundleMR.Collect(context.Background(), &rm); err != nil {
		h.t.Errorf("%s: collect bundle metrics: %v", h.name, err)
		return
	}
	for _, scope := range rm.ScopeMetrics {
		sm.Scope().SetName(scope.Scope.Name)
		for _, m := range scope.Metrics {
			if err := appendSDKMetric(sm.Metrics(), m); err != nil {
				h.t.Errorf("%s: %v", h.name, err)
			}
		}
	}
}

// appendSDKMetric converts one OTel SDK metric to pdata.
func appendSDKMetric(dst pmetric.MetricSlice, m metricdata.Metrics) error {
	out := dst.AppendEmpty()
	out.SetName(m.Name)
	out.SetUnit(m.Unit)
	out.SetDescription(m.Description)
	switch data := m.Data.(type) {
	case metricdata.Sum[int64]:
		s := out.SetEmptySum()
		s.SetIsMonotonic(data.IsMonotonic)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		for _, dp := range data.DataPoints {
			p := s.DataPoints().AppendEmpty()
			p.SetStartTimestamp(pcommon.NewTimestampFromTime(dp.StartTime))
			p.SetTimestamp(pcommon.NewTimestampFromTime(dp.Time))
			p.SetIntValue(dp.Value)
			putSDKAttrs(p.Attributes(), dp.Attributes)
		}
	case metricdata.Gauge[int64]:
		g := out.SetEmptyGauge()
		for _, dp := range data.DataPoints {
			p := g.DataPoints().AppendEmpty()
			p.SetTimestamp(pcommon.NewTimestampFromTime(dp.Time))
			p.SetIntValue(dp.Value)
			putSDKAttrs(p.Attributes(), dp.Attributes)
		}
	default:
		return fmt.Errorf("metric %s: SDK type %T not converted; extend appendSDKMetric", m.Name, m.Data)
	}
	return nil
}

func putSDKAttrs(dst pcommon.Map, attrs attribute.Set) {
	for _, kv := range attrs.ToSlice() {
		dst.PutStr(string(kv.Key), kv.Value.String())
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
