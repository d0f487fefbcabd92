package otelconv

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/linuxdiag/aod/internal/nfsproc"
)

// Attribute keys of the NFS mountstats metrics. The RPC ones are OpenTelemetry's (RPC
// and ONC RPC registries); the export is keyed as the NFS request metrics key it (the
// NFS table's Keys.Share, held equal by a test: importing internal/nfs here would
// register the NFS table in every binary that converts metrics).
const (
	AttrRPCSystem         = "rpc.system"             // always "onc_rpc"
	AttrONCProgram        = "onc_rpc.program.name"   // "nfs"
	AttrONCVersion        = "onc_rpc.version"        // 3, 4 (int)
	AttrONCProcedure      = "onc_rpc.procedure.name" // "READ", as mountstats prints it
	AttrNFSExport         = "nfs.share"              // the export path of server:/export
	AttrMountPoint        = "system.filesystem.mountpoint"
	AttrNetworkDirection  = "network.io.direction" // transmit, receive
	AttrNetworkTransport  = "network.transport"    // tcp, udp, rdma, local
	AttrNFSEvent          = "nfs.client.event"     // inode_revalidate, vfs_open, ...
	AttrNFSIODirection    = "nfs.io.direction"     // read, write
	AttrNFSIOSource       = "nfs.io.source"        // normal, direct, server
	rpcSystemONC          = "onc_rpc"
	mountstatsMetricsRoot = "nfs.client.mountstats."
)

// mountKey names one mount's series.
type mountKey struct{ device, dir string }

// mountStarts holds each NFS mount's start time: when it was set up, from the age the
// kernel prints, found once so that rounding to whole seconds cannot move it. A mount
// whose age went down was mounted again and starts anew.
type mountStarts struct {
	m map[mountKey]*mountStart
}

type mountStart struct {
	start pcommon.Timestamp
	age   int64 // ns
	seen  bool
}

func (s *mountStarts) startOf(m *nfsproc.Mount, now pcommon.Timestamp) pcommon.Timestamp {
	if s.m == nil {
		s.m = map[mountKey]*mountStart{}
	}
	k := mountKey{m.Device, m.MountPoint}
	st := s.m[k]
	age := int64(m.Age)
	if st == nil || age < st.age {
		st = &mountStart{start: now - pcommon.Timestamp(min(age, int64(now)))}
		s.m[k] = st
	}
	st.age, st.seen = age, true
	return st.start
}

// sweep forgets mounts the last snapshot did not list.
func (s *mountStarts) sweep() {
	for k, st := range s.m {
		if !st.seen {
			delete(s.m, k)
		}
		st.seen = false
	}
}

// nfsBuilder appends the mountstats metrics of one snapshot.
type nfsBuilder struct {
	*builder
	start pcommon.Timestamp // of the mount being built
	mount *nfsproc.Mount
	op    *nfsproc.Op
}

// point appends a point with the mount's (and the op's, if any) attributes plus kv.
func (b *nfsBuilder) point(dps pmetric.NumberDataPointSlice, kv ...string) pmetric.NumberDataPoint {
	dp := dps.AppendEmpty()
	dp.SetStartTimestamp(b.start)
	dp.SetTimestamp(b.now)
	a := dp.Attributes()
	a.EnsureCapacity(7 + len(kv)/2)
	a.PutStr(AttrServer, b.mount.Server)
	a.PutStr(AttrNFSExport, b.mount.Export)
	a.PutStr(AttrMountPoint, b.mount.MountPoint)
	if b.op != nil {
		a.PutStr(AttrRPCSystem, rpcSystemONC)
		a.PutStr(AttrONCProgram, b.mount.ProgramName)
		a.PutInt(AttrONCVersion, int64(b.mount.Version))
		a.PutStr(AttrONCProcedure, b.op.Name)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		a.PutStr(kv[i], kv[i+1])
	}
	return dp
}

func (b *nfsBuilder) count(dps pmetric.NumberDataPointSlice, v uint64, kv ...string) {
	b.point(dps, kv...).SetIntValue(int64(min(v, 1<<63-1)))
}

func (b *nfsBuilder) seconds(dps pmetric.NumberDataPointSlice, ms int64) {
	b.point(dps).SetDoubleValue(float64(ms) / 1e3)
}

// nfsMetric is one metric of the mountstats set, made when first needed.
type nfsMetric struct {
	name, unit, desc string
	dps              pmetric.NumberDataPointSlice
	made             bool
}

func (b *nfsBuilder) sumOf(m *nfsMetric) pmetric.NumberDataPointSlice {
	if !m.made {
		m.dps, m.made = b.sum(mountstatsMetricsRoot+m.name, m.unit, m.desc), true
	}
	return m.dps
}

// nfsMetrics are the mountstats metrics in the order they are built.
type nfsMetrics struct {
	requests, transmissions, timeouts, errors, rpcIO, queue, rtt, execute nfsMetric
	events, io, pages                                                     nfsMetric
	connects, sends, receives, badXIDs, backlog                           nfsMetric
}

func newNFSMetrics() nfsMetrics {
	return nfsMetrics{
		requests:      nfsMetric{name: "rpc.requests", unit: "{request}", desc: "NFS RPCs completed, per mount and operation."},
		transmissions: nfsMetric{name: "rpc.transmissions", unit: "{transmission}", desc: "Times NFS RPCs were sent, retransmissions included."},
		timeouts:      nfsMetric{name: "rpc.major_timeouts", unit: "{timeout}", desc: "NFS RPCs that hit a major timeout (\"server not responding\")."},
		errors:        nfsMetric{name: "rpc.errors", unit: "{request}", desc: "NFS RPCs that completed with an error status (Linux 5.3 and later)."},
		rpcIO:         nfsMetric{name: "rpc.io", unit: "By", desc: "Bytes of NFS RPC requests sent and replies received, RPC headers included."},
		queue:         nfsMetric{name: "rpc.queue.time", unit: "s", desc: "Summed time NFS RPCs waited to be sent (counted in whole milliseconds per RPC)."},
		rtt:           nfsMetric{name: "rpc.round_trip.time", unit: "s", desc: "Summed time from sending NFS RPCs to their replies (counted in whole milliseconds per RPC)."},
		execute:       nfsMetric{name: "rpc.execution.time", unit: "s", desc: "Summed time NFS RPCs took from start to completion (counted in whole milliseconds per RPC)."},
		events:        nfsMetric{name: "events", unit: "{event}", desc: "NFS client events per mount (the kernel's NFSIOS counters)."},
		io:            nfsMetric{name: "io", unit: "By", desc: "Bytes read and written on an NFS mount: by applications through the page cache (normal) or O_DIRECT (direct), and from or to the server (server)."},
		pages:         nfsMetric{name: "pages", unit: "{page}", desc: "Pages read and written on an NFS mount."},
		connects:      nfsMetric{name: "transport.connects", unit: "{connection}", desc: "Connections the NFS mount's RPC transports set up."},
		sends:         nfsMetric{name: "transport.sends", unit: "{request}", desc: "RPC requests the NFS mount's transports sent (NFS ACL RPCs included)."},
		receives:      nfsMetric{name: "transport.receives", unit: "{reply}", desc: "RPC replies the NFS mount's transports received."},
		badXIDs:       nfsMetric{name: "transport.bad_xids", unit: "{reply}", desc: "RPC replies that matched no outstanding request."},
		backlog:       nfsMetric{name: "transport.backlog", unit: "{request}", desc: "Requests waiting for a transport slot, summed at each send: divided by the sends, the average backlog."},
	}
}

// buildMountStats appends the metrics of /proc/self/mountstats' NFS mounts. A mount
// listed twice under one name (a mount stacked on another) is exported once, from its
// last block, the one visible at that path.
func (m *Metrics) buildMountStats(b *builder, mounts []nfsproc.Mount) {
	if len(mounts) == 0 {
		return
	}
	last := make(map[mountKey]int, len(mounts))
	for i := range mounts {
		last[mountKey{mounts[i].Device, mounts[i].MountPoint}] = i
	}
	nb := nfsBuilder{builder: b}
	ms := newNFSMetrics()
	for i := range mounts {
		mt := &mounts[i]
		if last[mountKey{mt.Device, mt.MountPoint}] != i {
			continue
		}
		nb.mount, nb.op = mt, nil
		nb.start = m.mounts.startOf(mt, b.now)
		for j := range mt.Ops {
			nb.op = &mt.Ops[j]
			buildOp(&nb, &ms)
		}
		nb.op = nil
		buildMount(&nb, &ms)
	}
}

// buildOp appends one operation's series; operations never used on the mount are
// left out (most of NFSv4's 69 and more), and once used they stay.
func buildOp(b *nfsBuilder, ms *nfsMetrics) {
	op := b.op
	if op.Ops == 0 && op.Transmissions == 0 {
		return
	}
	b.count(b.sumOf(&ms.requests), op.Ops)
	b.count(b.sumOf(&ms.transmissions), op.Transmissions)
	b.count(b.sumOf(&ms.timeouts), op.MajorTimeouts)
	if op.HasErrors {
		b.count(b.sumOf(&ms.errors), op.Errors)
	}
	io := b.sumOf(&ms.rpcIO)
	b.count(io, op.BytesSent, AttrNetworkDirection, "transmit")
	b.count(io, op.BytesReceived, AttrNetworkDirection, "receive")
	b.seconds(b.sumOf(&ms.queue), op.Queue.Milliseconds())
	b.seconds(b.sumOf(&ms.rtt), op.RTT.Milliseconds())
	b.seconds(b.sumOf(&ms.execute), op.Execute.Milliseconds())
}

var byteAttrs = [...][2]string{
	nfsproc.BytesNormalRead: {"read", "normal"}, nfsproc.BytesNormalWritten: {"write", "normal"},
	nfsproc.BytesDirectRead: {"read", "direct"}, nfsproc.BytesDirectWritten: {"write", "direct"},
	nfsproc.BytesServerRead: {"read", "server"}, nfsproc.BytesServerWritten: {"write", "server"},
}

func buildMount(b *nfsBuilder, ms *nfsMetrics) {
	mt := b.mount
	if len(mt.Events) > 0 {
		ev := b.sumOf(&ms.events)
		for i, v := range mt.Events[:min(len(mt.Events), len(nfsproc.EventNames))] {
			b.count(ev, v, AttrNFSEvent, nfsproc.EventNames[i])
		}
	}
	if len(mt.Bytes) >= nfsproc.PagesWritten+1 {
		io := b.sumOf(&ms.io)
		for i, a := range byteAttrs {
			b.count(io, mt.Bytes[i], AttrNFSIODirection, a[0], AttrNFSIOSource, a[1])
		}
		pages := b.sumOf(&ms.pages)
		b.count(pages, mt.Bytes[nfsproc.PagesRead], AttrNFSIODirection, "read")
		b.count(pages, mt.Bytes[nfsproc.PagesWritten], AttrNFSIODirection, "write")
	}
	buildTransports(b, ms)
}

// buildTransports appends the mount's transport counters, added up per protocol over
// its transports (nconnect opens several).
func buildTransports(b *nfsBuilder, ms *nfsMetrics) {
	var sums []nfsproc.Transport
next:
	for _, x := range b.mount.Transports {
		for i := range sums {
			if s := &sums[i]; s.Proto == x.Proto {
				s.Connects += x.Connects
				s.Sends += x.Sends
				s.Receives += x.Receives
				s.BadXIDs += x.BadXIDs
				s.BacklogSum += x.BacklogSum
				continue next
			}
		}
		sums = append(sums, x)
	}
	for _, x := range sums {
		b.count(b.sumOf(&ms.connects), x.Connects, AttrNetworkTransport, x.Proto)
		b.count(b.sumOf(&ms.sends), x.Sends, AttrNetworkTransport, x.Proto)
		b.count(b.sumOf(&ms.receives), x.Receives, AttrNetworkTransport, x.Proto)
		b.count(b.sumOf(&ms.badXIDs), x.BadXIDs, AttrNetworkTransport, x.Proto)
		b.count(b.sumOf(&ms.backlog), x.BacklogSum, AttrNetworkTransport, x.Proto)
	}
}
