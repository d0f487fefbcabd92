//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/internal/latencyhist"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/smb"
)

// batchKeys is how many keys one batch lookup asks for at first. A hash bucket holding
// more keys than that makes the kernel refuse (ENOSPC); the batch then doubles.
const batchKeys = 64

// snapshotScratch holds the buffers map reads reuse, so that periodic snapshots do not
// allocate once they reached their size.
type snapshotScratch struct {
	counters []uint64
	histKeys []aodReqKey
	histVals []aodHistVal
	errKeys  []aodReqKey
	errVals  []uint64
}

func (s *snapshotScratch) counterVals(ncpu int) []uint64 {
	if len(s.counters) != ncpu {
		s.counters = make([]uint64, ncpu)
	}
	return s.counters
}

// forEachBatch walks every entry of m, a map with one value per key (not per-CPU),
// with batch lookups into *keys and *vals (reused, grown when needed) and calls fn with
// each key and its value. The walk is not a snapshot of one instant: entries changing
// meanwhile may be seen before or after the change.
func forEachBatch[K, V any](m *ebpf.Map, keys *[]K, vals *[]V, fn func(k *K, v *V)) error {
	if len(*keys) == 0 || len(*vals) != len(*keys) {
		*keys = make([]K, batchKeys)
		*vals = make([]V, batchKeys)
	}
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cursor, *keys, *vals, nil)
		if errors.Is(err, unix.ENOSPC) && n == 0 && uint32(len(*keys)) < m.MaxEntries() {
			*keys = make([]K, 2*len(*keys))
			*vals = make([]V, len(*keys))
			continue
		}
		for i := range n {
			fn(&(*keys)[i], &(*vals)[i])
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Histograms appends to dst[:0] one sample per (command, session, tree, NTSTATUS)
// histogram: the successful requests of a (command, session, tree)
// have status 0, its failed ones one histogram per status. Counts are cumulative
// since load (or since PruneSessions removed the key).
func (p *Probes) Histograms(dst []HistogramSample) ([]HistogramSample, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	dst = dst[:0]
	err := forEachBatch(p.objs.Histograms, &p.scratch.histKeys, &p.scratch.histVals,
		func(k *aodReqKey, v *aodHistVal) {
			dst = append(dst, HistogramSample{Protocol: proto.SMB})
			s := &dst[len(dst)-1]
			s.Command, s.SessionID, s.TreeID, s.Status, s.CgroupID = k.Command, k.SessionId, k.TreeId, k.Status, k.CgroupId
			s.addSlots(&v.Slots, v.SumNs)
			s.total()
		})
	if err != nil {
		return dst, fmt.Errorf("bpf: read histograms: %w", err)
	}
	return dst, nil
}

// addSlots adds a histogram value (struct hist_val: slot 0 the zero bucket,
// slot j+1 bucket j) to s.
func (s *HistogramSample) addSlots(slots *[latencyhist.NumBuckets + 1]uint64, sumNs uint64) {
	s.ZeroCount += slots[0]
	for j := range s.Buckets {
		s.Buckets[j] += slots[j+1]
	}
	s.SumNs += sumNs
}

// total sets s.Count from the buckets.
func (s *HistogramSample) total() {
	s.Count = s.ZeroCount
	for _, n := range s.Buckets {
		s.Count += n
	}
}

// Errors appends to dst[:0] one sample per (command, session, tree, NTSTATUS) failure
// count, cumulative.
func (p *Probes) Errors(dst []ErrorSample) ([]ErrorSample, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	dst = dst[:0]
	err := forEachBatch(p.objs.Errors, &p.scratch.errKeys, &p.scratch.errVals,
		func(k *aodReqKey, n *uint64) {
			dst = append(dst, ErrorSample{Protocol: proto.SMB, Command: k.Command, SessionID: k.SessionId, TreeID: k.TreeId,
				Status: k.Status, CgroupID: k.CgroupId, Count: *n})
		})
	if err != nil {
		return dst, fmt.Errorf("bpf: read error counts: %w", err)
	}
	return dst, nil
}

// InFlight appends to dst[:0] the requests whose start was seen and whose completion
// was not, with their age now. It reads the shared table without stopping the
// programs: an entry being written at that instant may be missed.
func (p *Probes) InFlight(dst []InFlightRequest) ([]InFlightRequest, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	dst = dst[:0]
	slots, err := p.startSlots()
	if err != nil {
		return dst, err
	}
	now, err := monotonicNow()
	if err != nil {
		return dst, err
	}
	for i := range slots {
		s := &slots[i]
		start := atomic.LoadUint64(&s.StartNs)
		if start == 0 {
			continue
		}
		r := InFlightRequest{
			SessionID: s.SessionId,
			MessageID: s.Mid,
			Command:   s.Command,
			TreeID:    s.TreeId,
			Pid:       s.Pid,
			Tgid:      s.Tgid,
			Comm:      s.Comm,
			StartNs:   start,
			Age:       age(now, start),
		}
		// Rewritten meanwhile: the fields may mix two requests.
		if atomic.LoadUint64(&s.StartNs) != start {
			continue
		}
		dst = append(dst, r)
	}
	return dst, nil
}

// SweepStale frees in-flight entries older than maxAge and counts them in
// Counters.AgedOut: requests that will never complete, such as those a reconnect aborted
// (the programs free the chained requests of a failed compound themselves:
// Counters.ChainReleased). CHANGE_NOTIFY requests are never swept: they
// wait for a change by design. A newer request would evict such an entry eventually,
// but as an eviction; call this periodically (every few seconds, maxAge well above the
// longest legitimate request, e.g. a few minutes) so they are counted as what they are.
// An entry is freed with a compare-and-swap on its start time, so one the programs
// reuse meanwhile is left alone. It returns the number freed by this call.
func (p *Probes) SweepStale(maxAge time.Duration) (int, error) {
	if maxAge <= 0 {
		return 0, fmt.Errorf("bpf: sweep age %v is not positive", maxAge)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	slots, err := p.startSlots()
	if err != nil {
		return 0, err
	}
	now, err := monotonicNow()
	if err != nil {
		return 0, err
	}
	freed := 0
	for i := range slots {
		s := &slots[i]
		start := atomic.LoadUint64(&s.StartNs)
		if start == 0 || age(now, start) <= maxAge || s.Command == smb.ChangeNotify {
			continue
		}
		if atomic.CompareAndSwapUint64(&s.StartNs, start, 0) {
			freed++
		}
	}
	p.agedOut.Add(uint64(freed))
	return freed, nil
}

// setStart sets the start time of the in-flight request (session, mid, command) to
// start(), called just before the store: the programs' clock cannot be set, so this is
// how the test harness gives a completion a latency of its choosing (see
// internal/probeaccess).
func (p *Probes) setStart(session, mid uint64, command uint16, start func() uint64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	slots, err := p.startSlots()
	if err != nil {
		return err
	}
	for i := range slots {
		s := &slots[i]
		if atomic.LoadUint64(&s.StartNs) != 0 && s.SessionId == session && s.Mid == mid && s.Command == command {
			atomic.StoreUint64(&s.StartNs, start())
			return nil
		}
	}
	return fmt.Errorf("bpf: no request of session %#x, mid %d, command %s in flight", session, mid, smb.Command(command))
}

// PruneSessions deletes the histograms and error counts of every session for which
// keep returns false (sessions that ended: a reconnect makes a new session id), so
// their entries do not fill the maps. It returns the number of entries deleted.
func (p *Probes) PruneSessions(keep func(sessionID uint64) bool) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var histDoomed []aodReqKey
	err := forEachBatch(p.objs.Histograms, &p.scratch.histKeys, &p.scratch.histVals,
		func(k *aodReqKey, _ *aodHistVal) {
			if !keep(k.SessionId) {
				histDoomed = append(histDoomed, *k)
			}
		})
	if err != nil {
		return 0, fmt.Errorf("bpf: read histograms: %w", err)
	}
	var errDoomed []aodReqKey
	err = forEachBatch(p.objs.Errors, &p.scratch.errKeys, &p.scratch.errVals,
		func(k *aodReqKey, _ *uint64) {
			if !keep(k.SessionId) {
				errDoomed = append(errDoomed, *k)
			}
		})
	if err != nil {
		return 0, fmt.Errorf("bpf: read error counts: %w", err)
	}
	n1, err1 := deleteAll(p.objs.Histograms, histDoomed)
	n2, err2 := deleteAll(p.objs.Errors, errDoomed)
	return n1 + n2, errors.Join(err1, err2)
}

func deleteAll[K any](m *ebpf.Map, keys []K) (int, error) {
	n := 0
	var errs []error
	for i := range keys {
		err := m.Delete(&keys[i])
		switch {
		case err == nil:
			n++
		case !errors.Is(err, ebpf.ErrKeyNotExist):
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// monotonicNow reads CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns.
func monotonicNow() (uint64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, fmt.Errorf("bpf: read CLOCK_MONOTONIC: %w", err)
	}
	return uint64(ts.Nano()), nil
}

func age(now, start uint64) time.Duration {
	if now <= start {
		return 0
	}
	return time.Duration(now - start)
}
