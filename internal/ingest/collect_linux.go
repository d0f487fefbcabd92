//go:build linux

package ingest

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/cifsproc"
	"github.com/linuxdiag/aod/internal/nfsproc"
	"github.com/linuxdiag/aod/internal/otelconv"
	"github.com/linuxdiag/aod/internal/proto"
)

// snapshotState is the collect loop's reused memory and bookkeeping.
type snapshotState struct {
	hist        []bpf.HistogramSample
	errs        []bpf.ErrorSample
	nfsHist     []bpf.NFSHistogramSample
	nfsErrs     []bpf.ErrorSample
	ioErrs      []bpf.IOErrorSample
	v4Codes     []uint16 // the NFSv4 procedure order last given to the NFS probes
	inFlight    []bpf.InFlightRequest
	lastPrune   time.Time
	statsErrors uint64
	nfsErrors   uint64
}

func (r *Receiver) collectLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.CollectionInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r.collect(ctx, now)
		}
	}
}

// collect reads everything the metrics come from and hands them to the consumer.
// Whatever cannot be read is logged and left out; the rest is still delivered.
func (r *Receiver) collect(ctx context.Context, now time.Time) {
	s := r.readSnapshot(now)
	r.metrics.Update(s)
	r.prune(now)
	if r.cons.Metrics == nil {
		return
	}
	exp, explicit := pmetric.NewMetrics(), pmetric.NewMetrics()
	if r.cfg.Exponential {
		exp = r.metrics.Build(otelconv.Exponential)
	}
	if r.cfg.Explicit {
		explicit = r.metrics.Build(otelconv.Explicit)
	}
	if err := r.cons.Metrics(ctx, exp, explicit); err != nil {
		r.log.Warn("metrics not accepted", "error", err)
	}
}

func (r *Receiver) readSnapshot(now time.Time) *otelconv.Snapshot {
	st := &r.snapshot
	s := &otelconv.Snapshot{Time: now, Hooks: r.Hooks()}
	var errs []error
	var err error
	// Sweep first, so that the counters include this sweep and in-flight excludes it.
	if _, err = r.kernel.SweepStale(r.cfg.StaleAge); err != nil {
		errs = append(errs, err)
	}
	if s.Kernel, err = r.kernel.Counters(); err != nil {
		errs = append(errs, err)
	}
	if st.hist, err = r.kernel.Histograms(st.hist); err != nil {
		errs = append(errs, err)
	}
	if st.errs, err = r.kernel.Errors(st.errs); err != nil {
		errs = append(errs, err)
	}
	if err = r.readNFS(); err != nil {
		errs = append(errs, err)
	}
	// Right after the NFS probes' counts: RPCs that complete between the two reads
	// delay binding RPC clients to their mounts (nfsproc.Clients).
	if s.NFSMounts, err = r.readMountStats(); err != nil {
		st.nfsErrors++
		errs = append(errs, err)
	} else if r.nfs != nil {
		// Before the metrics are updated, so that the RPCs that bind a client are
		// counted under its mount.
		r.clients.Update(rpcCounts(st.nfsHist), s.NFSMounts)
		if err = r.setV4Order(s.NFSMounts); err != nil {
			errs = append(errs, err)
		}
	}
	s.MountStatsErrors = st.nfsErrors
	// The scope first: a failure on a mount made since the last collection is named.
	if err = r.refreshIOScope(); err != nil {
		errs = append(errs, err)
	}
	if err = r.readIO(); err != nil {
		errs = append(errs, err)
	}
	s.Latencies, s.Errors = st.hist, st.errs
	if st.inFlight, err = r.kernel.InFlight(st.inFlight); err != nil {
		errs = append(errs, err)
	}
	s.InFlight = len(st.inFlight)
	s.Reader = r.reader.Stats()
	s.RingUsed, s.RingSize = r.reader.Fill()

	if s.Programs, s.ProgramsTimed, err = r.programStats(); err != nil {
		errs = append(errs, err)
	}
	if s.Stats, err = r.readStats(); err != nil {
		st.statsErrors++
		errs = append(errs, err)
	}
	s.StatsErrors = st.statsErrors
	ddRead, ddParse, _ := r.names.Errors()
	s.DebugDataErrors = ddRead + ddParse
	if len(errs) > 0 {
		r.log.Warn("collection incomplete", "error", errors.Join(errs...))
	}
	return s
}

// readNFS appends the NFS probes' histograms and error counts to the SMB probes' in
// the snapshot state; the samples carry their protocol.
func (r *Receiver) readNFS() error {
	if r.nfs == nil {
		return nil
	}
	st := &r.snapshot
	var errs []error
	var err error
	if st.nfsHist, err = r.nfs.Histograms(st.nfsHist); err != nil {
		errs = append(errs, err)
	}
	for i := range st.nfsHist {
		st.hist = append(st.hist, st.nfsHist[i].HistogramSample)
	}
	if st.nfsErrs, err = r.nfs.Errors(st.nfsErrs); err != nil {
		errs = append(errs, err)
	}
	st.errs = append(st.errs, st.nfsErrs...)
	return errors.Join(errs...)
}

// rpcCounts sums the NFS histograms per RPC client and procedure, over statuses:
// mountstats counts failed RPCs too.
func rpcCounts(hist []bpf.NFSHistogramSample) map[uint64]nfsproc.Counts {
	out := map[uint64]nfsproc.Counts{}
	for i := range hist {
		h := &hist[i]
		c := out[h.SessionID]
		if c == nil {
			c = nfsproc.Counts{}
			out[h.SessionID] = c
		}
		c[h.Command] += h.Count
	}
	return out
}

// programStatser is implemented by probes that report each program's run statistics.
type programStatser interface {
	ProgramStats() (map[string]*ebpf.ProgramStats, error)
}

// bpfStatsEnabled is the sysctl under which the kernel times BPF programs (a variable
// for tests).
var bpfStatsEnabled = "/proc/sys/kernel/bpf_stats_enabled"

// programStats returns every loaded program's statistics, and whether the kernel timed
// them: run time and count only while kernel.bpf_stats_enabled = 1 (not the default:
// timing costs every run a little, so the receiver never turns it on itself); skipped
// runs always.
func (r *Receiver) programStats() ([]otelconv.ProgramStats, bool, error) {
	on, err := os.ReadFile(bpfStatsEnabled)
	timed := err == nil && strings.TrimSpace(string(on)) == "1"
	stats := map[string]*ebpf.ProgramStats{}
	var errs []error
	for _, k := range []any{r.kernel, r.nfs, r.io} {
		ps, ok := k.(programStatser)
		if !ok {
			continue
		}
		s, err := ps.ProgramStats()
		errs = append(errs, err)
		maps.Copy(stats, s)
	}
	out := make([]otelconv.ProgramStats, 0, len(stats))
	for _, name := range slices.Sorted(maps.Keys(stats)) {
		st := stats[name]
		p := otelconv.ProgramStats{Name: name, Skipped: st.RecursionMisses}
		if timed {
			p.RunTime, p.RunCount = st.Runtime, st.RunCount
		}
		out = append(out, p)
	}
	return out, timed, errors.Join(errs...)
}

// readStats reads /proc/fs/cifs/Stats; a missing file (cifs not loaded) is no error.
func (r *Receiver) readStats() (*cifsproc.Stats, error) {
	data, err := r.readProc("Stats")()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return cifsproc.ParseStats(data)
}

// readMountStats reads the NFS mounts' counters from /proc/self/mountstats, which the
// kernel fills from what it keeps in memory: the mounts' servers are never asked. A
// missing file is no error; mounts that parsed are returned next to a parse error.
func (r *Receiver) readMountStats() ([]nfsproc.Mount, error) {
	f, err := os.Open(r.cfg.MountStats)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return nfsproc.Parse(r.cfg.MountStats, f)
}

func (r *Receiver) readProc(name string) func() ([]byte, error) {
	return func() ([]byte, error) { return os.ReadFile(filepath.Join(r.cfg.ProcDir, name)) }
}

// prune deletes, every PruneInterval, the kernel map entries of sessions DebugData no
// longer lists: sessions that ended, whose counts the collection just read.
func (r *Receiver) prune(now time.Time) {
	st := &r.snapshot
	if now.Sub(st.lastPrune) < r.cfg.PruneInterval {
		return
	}
	st.lastPrune = now
	listed, ok := r.names.ListedSessions()
	if !ok {
		return
	}
	// Session 0 is the first leg of every session setup.
	keep := func(id uint64) bool { return id == 0 || listed[id] }
	n, err := r.kernel.PruneSessions(keep)
	r.metrics.ForgetSessions(proto.SMB, keep)
	if err != nil {
		r.log.Warn("pruning ended sessions", "error", err)
	}
	if n > 0 {
		r.log.Debug("pruned the kernel entries of ended sessions", "entries", n)
	}
}
