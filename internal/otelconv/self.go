package otelconv

import (
	"maps"
	"slices"

	"github.com/linuxdiag/aod/internal/proto"
)

// Drop reasons of aod.events.dropped.
const (
	DropRingFull       = "ring_full"       // the kernel could not reserve ring space
	DropQueueFull      = "queue_full"      // the receiver's consumers were behind
	DropOrphaned       = "orphaned"        // a completion whose start the kernel no longer had
	DropStartCollision = "start_collision" // a start that replaced an unfinished one of the same identity
	DropHistogramFull  = "histogram_full"  // the histogram map had no room for a new series
	DropErrorMapFull   = "error_map_full"  // the failure map had no room for a new series
	DropAgedOut        = "aged_out"        // an in-flight request removed unfinished after the stale age
	DropProbeSkipped   = "probe_skipped"   // a program run the kernel skipped (the program was already running on that CPU)
)

func (m *Metrics) buildSelf(b *builder, s *Snapshot) {
	var skipped uint64
	for _, p := range s.Programs {
		skipped += p.Skipped
	}
	b.counter(b.sum("aod.events.emitted", "{event}", "Records the BPF programs wrote to the ring buffer."), s.Kernel.EventsEmitted)
	b.counter(b.sum("aod.events.read", "{event}", "Records the receiver read from the ring buffer."), s.Reader.Read)
	dropped := b.sum("aod.events.dropped", "{event}", "Events or measurements lost, by reason.")
	for _, d := range []struct {
		reason string
		n      uint64
	}{
		{DropRingFull, s.Kernel.RingReserveFailures},
		{DropQueueFull, s.Reader.DroppedQueueFull},
		{DropOrphaned, s.Kernel.Orphans},
		{DropStartCollision, s.Kernel.StartCollisions},
		{DropHistogramFull, s.Kernel.HistogramMapFull},
		{DropErrorMapFull, s.Kernel.ErrorMapFull},
		{DropAgedOut, s.Kernel.AgedOut},
		{DropProbeSkipped, skipped},
	} {
		b.counter(dropped, d.n, AttrDropReason, d.reason)
	}
	b.counter(b.sum("aod.events.decode_errors", "{event}", "Ring buffer records that did not decode."), s.Reader.DecodeErrors)
	b.counter(b.sum("aod.requests.filtered", "{request}", "Completed requests neither slow nor failed with a tracked status: counted in the histograms only."), s.Kernel.EventsFiltered)
	b.counter(b.sum("aod.requests.duplicate_completions", "{completion}", "Repeated completions of one request, ignored."), s.Kernel.DoubleCompletions)
	b.counter(b.sum("aod.requests.chain_released", "{request}", "Requests freed unfinished because a member before them in their compound failed: the client reads no result after a failure, so they never complete."), s.Kernel.ChainReleased)
	b.level(b.gauge("aod.requests.in_flight", "{request}", "Requests started and not yet completed, as the kernel's start map holds them."), int64(s.InFlight))
	if s.RingSize > 0 {
		b.levelDouble(b.gauge("aod.ring.fill", "1", "Fraction of the ring buffer holding unread records."), float64(s.RingUsed)/float64(s.RingSize))
	}
	if len(s.Programs) > 0 {
		// Per program, so that a lost event can be told apart: a skipped start, completion
		// or connection end.
		runsSkipped := b.sum("aod.bpf.runs_skipped", "{run}", "Runs of each BPF program the kernel skipped because the program was already running on that CPU (preempted there: tracepoint programs are preemptible from Linux 7.0, fexit programs always were): the event it would have handled is lost.")
		for _, p := range s.Programs {
			b.counter(runsSkipped, p.Skipped, AttrProgram, p.Name)
		}
	}
	if s.ProgramsTimed && len(s.Programs) > 0 {
		runTime := b.sum("aod.bpf.run_time", "s", "Time the kernel spent running each BPF program (kernel.bpf_stats_enabled).")
		for _, p := range s.Programs {
			dp := runTime.AppendEmpty()
			b.times(dp)
			dp.SetDoubleValue(p.RunTime.Seconds())
			dp.Attributes().PutStr(AttrProgram, p.Name)
		}
		runs := b.sum("aod.bpf.run_count", "{run}", "Runs of each BPF program (kernel.bpf_stats_enabled).")
		for _, p := range s.Programs {
			b.counter(runs, p.RunCount, AttrProgram, p.Name)
		}
	}
	if len(s.Hooks) > 0 {
		hooks := b.gauge("aod.bpf.hook.attached", "1", "1 for each hook (tracepoint or fexit function) of aod's programs that is attached, 0 for one that is not (missing in this kernel, other arguments, or the programs did not load).")
		for _, h := range s.Hooks {
			v := int64(0)
			if h.Attached {
				v = 1
			}
			b.level(hooks, v, AttrProtocol, h.Protocol, AttrHook, h.Hook)
		}
	}
	m.buildOverflow(b)
	procErrs := b.sum("aod.cifs.proc.errors", "{error}", "Reads of /proc/fs/cifs files that failed or did not parse cleanly.")
	b.counter(procErrs, s.DebugDataErrors, AttrProcFile, "DebugData")
	b.counter(procErrs, s.StatsErrors, AttrProcFile, "Stats")
	b.counter(b.sum("aod.nfs.mountstats.errors", "{error}", "Reads of /proc/self/mountstats that failed or did not parse cleanly."), s.MountStatsErrors)
}

// buildOverflow counts, per request metric past its cardinality limit, the series
// folded into its overflow series; nothing while none is.
func (m *Metrics) buildOverflow(b *builder) {
	if len(m.lat.perProto) == 0 && len(m.errs.perProto) == 0 {
		return
	}
	dps := b.gauge("aod.metric.overflow.series", "{series}", "Distinct request series folded into a metric's otel.metric.overflow series, past telemetry.cardinality_limit.")
	for _, set := range []struct {
		metric func(k *proto.Keys) string
		n      map[proto.Protocol]uint64
	}{
		{func(k *proto.Keys) string { return k.Duration }, m.lat.perProto},
		{func(k *proto.Keys) string { return k.Errors }, m.errs.perProto},
	} {
		for _, p := range slices.Sorted(maps.Keys(set.n)) {
			b.level(dps, int64(set.n[p]), AttrMetric, set.metric(&proto.TableOf(p).Keys))
		}
	}
}
