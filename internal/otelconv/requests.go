package otelconv

import (
	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/latencyhist"
	"github.com/linuxdiag/aod/internal/podattr"
	"github.com/linuxdiag/aod/internal/proto"
)

type kernelKey struct {
	protocol proto.Protocol
	session  uint64
	tree     uint32
	command  uint16
	status   uint32
	cgroup   uint64 // the issuers' cgroup when the probes count per cgroup, else 0
}

// requestSeries names one exported series of the request metrics.
type requestSeries struct {
	protocol proto.Protocol
	command  uint16
	status   uint32 // failure status (error.type); 0: succeeded
	server   string
	share    string
	workload podattr.Workload // with Metrics.SetWorkloads: the issuers' (seriesWorkload)
	overflow bool             // the series past the cardinality limit fold into (no other field set)
}

// workloadOf names a kernel entry's cgroup for a series: nil or no cgroup, none.
type workloadOf func(cgroupID uint64) podattr.Workload

// seriesWorkload keeps of w what names a workload across its processes and
// restarts: the pod (uid, namespace, name) and container name on Kubernetes, else
// the container (id, runtime), else the systemd unit; never the cgroup path.
func seriesWorkload(w podattr.Workload) podattr.Workload {
	switch {
	case w.PodUID != "":
		return podattr.Workload{PodUID: w.PodUID, Namespace: w.Namespace, PodName: w.PodName, ContainerName: w.ContainerName}
	case w.ContainerID != "":
		return podattr.Workload{ContainerID: w.ContainerID, Runtime: w.Runtime}
	}
	return podattr.Workload{Unit: w.Unit}
}

// seriesSet is one request metric's exported series, in creation order for a stable
// output order. With a limit, each protocol's metric keeps at most limit series: the
// first limit-1 distinct ones, and one overflow series (otel.metric.overflow=true)
// that every later one folds into, as OpenTelemetry's cardinality limit does.
type seriesSet[V any] struct {
	series     map[requestSeries]*V
	order      []requestSeries
	limit      int                       // 0: none
	kept       [256]int                  // series per protocol, overflow excluded
	overflowed map[requestSeries]bool    // series folded into the overflow series
	perProto   map[proto.Protocol]uint64 // len(overflowed) by protocol
}

func newSeriesSet[V any]() seriesSet[V] {
	return seriesSet[V]{series: map[requestSeries]*V{}, overflowed: map[requestSeries]bool{}, perProto: map[proto.Protocol]uint64{}}
}

// get returns the state of key's series, creating it, or the overflow series' when
// the key's protocol already has its limit of series.
func (s *seriesSet[V]) get(key requestSeries) *V {
	if v := s.series[key]; v != nil {
		return v
	}
	if s.limit > 0 && s.kept[key.protocol] >= s.limit-1 {
		if !s.overflowed[key] {
			s.overflowed[key] = true
			s.perProto[key.protocol]++
		}
		key = requestSeries{protocol: key.protocol, overflow: true}
		if v := s.series[key]; v != nil {
			return v
		}
	} else {
		s.kept[key.protocol]++
	}
	v := new(V)
	s.series[key] = v
	s.order = append(s.order, key)
	return v
}

type latencyState struct {
	zero    uint64
	buckets [latencyhist.NumBuckets]uint64
	sumNs   uint64
}

// latencies turns successive reads of the kernel histogram map into cumulative series
// per (command, status, server, share). Each kernel entry's growth since the previous
// read is added to the series its ids resolve to, so several sessions on one share add
// up, and an entry that starts over (deleted and re-created in the kernel) only adds
// its new counts: the exported series never go backwards.
type latencies struct {
	prev map[kernelKey]*latencyState
	seriesSet[latencyState]
	seen map[kernelKey]bool
}

func newLatencies() *latencies {
	return &latencies{prev: map[kernelKey]*latencyState{}, seriesSet: newSeriesSet[latencyState](), seen: map[kernelKey]bool{}}
}

func (l *latencies) update(entries []bpf.HistogramSample, names Resolver, work workloadOf) {
	clear(l.seen)
	for i := range entries {
		e := &entries[i]
		k := kernelKey{protocol: e.Protocol, session: e.SessionID, tree: e.TreeID, command: e.Command, status: e.Status,
			cgroup: e.CgroupID}
		l.seen[k] = true
		p := l.prev[k]
		if p == nil {
			p = &latencyState{}
			l.prev[k] = p
		}
		restarted := e.ZeroCount < p.zero || e.SumNs < p.sumNs
		for j := range e.Buckets {
			restarted = restarted || e.Buckets[j] < p.buckets[j]
		}
		if restarted {
			*p = latencyState{}
		}
		if e.ZeroCount == p.zero && e.SumNs == p.sumNs && e.Buckets == p.buckets {
			continue
		}
		s := l.seriesFor(k, names, work)
		s.zero += e.ZeroCount - p.zero
		s.sumNs += e.SumNs - p.sumNs
		for j := range e.Buckets {
			s.buckets[j] += e.Buckets[j] - p.buckets[j]
		}
		p.zero, p.sumNs, p.buckets = e.ZeroCount, e.SumNs, e.Buckets
	}
	for k := range l.prev {
		if !l.seen[k] {
			delete(l.prev, k) // gone from the kernel; a re-created entry counts from zero
		}
	}
}

func (l *latencies) seriesFor(k kernelKey, names Resolver, work workloadOf) *latencyState {
	return l.get(k.series(names, work))
}

// series names the exported series a kernel entry counts into.
func (k kernelKey) series(names Resolver, work workloadOf) requestSeries {
	name, _ := names.Lookup(k.protocol, k.session, k.tree)
	s := requestSeries{protocol: k.protocol, command: k.command, status: k.status, server: name.Server, share: name.Share}
	if work != nil && k.cgroup != 0 {
		s.workload = seriesWorkload(work(k.cgroup))
	}
	return s
}

// errorCounts does for the failure map what latencies does for the histograms.
type errorCounts struct {
	prev map[kernelKey]uint64
	seriesSet[uint64]
	seen map[kernelKey]bool
}

func newErrorCounts() *errorCounts {
	return &errorCounts{prev: map[kernelKey]uint64{}, seriesSet: newSeriesSet[uint64](), seen: map[kernelKey]bool{}}
}

func (c *errorCounts) update(entries []bpf.ErrorSample, names Resolver, work workloadOf) {
	clear(c.seen)
	for _, e := range entries {
		k := kernelKey{protocol: e.Protocol, session: e.SessionID, tree: e.TreeID, command: e.Command, status: e.Status,
			cgroup: e.CgroupID}
		c.seen[k] = true
		p := c.prev[k]
		if e.Count < p {
			p = 0
		}
		c.prev[k] = e.Count
		if e.Count == p {
			continue
		}
		*c.get(k.series(names, work)) += e.Count - p
	}
	for k := range c.prev {
		if !c.seen[k] {
			delete(c.prev, k)
		}
	}
}
