//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/internal/smb"
)

// Probes are the loaded BPF programs and maps. Create them with Load, attach them
// with Attach, release everything with Close. Methods are safe for concurrent use.
type Probes struct {
	objs aodObjects
	opts Options
	log  *slog.Logger
	ncpu int

	attachMu sync.Mutex // guards links and closed; not held while waiting for cifs
	links    []link.Link
	closed   bool
	// fallback holds the fallback programs once Attach loaded them (set under
	// attachMu, read by ProgramStats without it).
	fallback atomic.Pointer[aodfallbackPrograms]

	agedOut atomic.Uint64 // entries SweepStale freed

	mu      sync.Mutex // guards starts and the scratch buffers
	scratch snapshotScratch
	// starts is the in-flight table mapped into memory: []aodStartSlot, shared with
	// the programs (see struct start_slot in include/aod.h). nil after Close.
	starts []byte
}

// Load loads the programs and maps through the verifier, sized by opts. Nothing is
// attached yet: see Attach.
func Load(opts Options) (*Probes, error) {
	opts = opts.withDefaults()
	if err := opts.validate(os.Getpagesize()); err != nil {
		return nil, err
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; a no-op after.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("bpf: raise RLIMIT_MEMLOCK: %w", err)
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("bpf: %w", err)
	}

	spec, err := loadAod()
	if err != nil {
		return nil, fmt.Errorf("bpf: %w", err)
	}
	if err := sizeSpec(spec, opts); err != nil {
		return nil, err
	}

	p := &Probes{opts: opts, log: opts.Logger, ncpu: ncpu}
	if err := spec.LoadAndAssign(&p.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("bpf: the verifier rejected the probes: %+v", ve)
		}
		return nil, fmt.Errorf("bpf: load probes: %w", err)
	}
	size := int(unsafe.Sizeof(aodStartSlot{})) * int(opts.StartEntries)
	size = (size + os.Getpagesize() - 1) &^ (os.Getpagesize() - 1)
	p.starts, err = unix.Mmap(p.objs.Starts.FD(), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		p.objs.Close()
		return nil, fmt.Errorf("bpf: map the in-flight table: %w", err)
	}
	return p, nil
}

// sizeSpec sizes the maps and sets the load-time constants of either object (aod or
// aodfallback: same map and variable names), as opts says.
func sizeSpec(spec *ebpf.CollectionSpec, opts Options) error {
	spec.Maps[aodMapStarts].MaxEntries = opts.StartEntries
	if err := spec.Variables[aodVarStartBucketMask].Set(opts.StartEntries/2 - 1); err != nil {
		return fmt.Errorf("bpf: set start_bucket_mask: %w", err)
	}
	spec.Maps[aodMapHistograms].MaxEntries = opts.HistogramEntries
	spec.Maps[aodMapErrors].MaxEntries = opts.ErrorEntries
	allocOnInsert(spec.Maps[aodMapHistograms], spec.Maps[aodMapErrors])
	spec.Maps[aodMapEvents].MaxEntries = opts.RingBytes
	if err := spec.Variables[aodVarWakeupEvery].Set(opts.WakeupEvery); err != nil {
		return fmt.Errorf("bpf: set wakeup_every: %w", err)
	}
	return nil
}

// allocOnInsert makes hash maps allocate their entries on insert
// (BPF_F_NO_PREALLOC), so that their memory follows the entries in use rather than
// max_entries, where the kernel lets tracing programs insert into such maps safely:
// since Linux 6.1 (bpf_mem_alloc). Before, the verifier accepts them with a kernel
// warning (WARN_ONCE, fatal under panic_on_warn), so they stay preallocated there.
func allocOnInsert(maps ...*ebpf.MapSpec) {
	if !kernelAllocatesOnInsert() {
		return
	}
	for _, m := range maps {
		m.Flags |= unix.BPF_F_NO_PREALLOC
	}
}

var kernelAllocatesOnInsert = sync.OnceValue(func() bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	var major, minor int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 6 || major == 6 && minor >= 1
})

// errClosed is returned by methods called after Close.
var errClosed = errors.New("bpf: probes closed")

// startSlots returns the in-flight table; the caller holds p.mu. Its entries change
// under the caller's feet: read start_ns atomically, and treat the other fields as
// valid only while it holds.
func (p *Probes) startSlots() ([]aodStartSlot, error) {
	if p.starts == nil {
		return nil, errClosed
	}
	return unsafe.Slice((*aodStartSlot)(unsafe.Pointer(&p.starts[0])), p.opts.StartEntries), nil
}

// Close detaches every program and releases the programs and maps. Readers created
// with NewReader must be closed by their owner.
func (p *Probes) Close() error {
	p.attachMu.Lock()
	defer p.attachMu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	err := p.detachLocked()
	if fb := p.fallback.Swap(nil); fb != nil {
		err = errors.Join(err, fb.Close())
	}
	p.mu.Lock()
	err = errors.Join(err, unix.Munmap(p.starts))
	p.starts = nil
	p.mu.Unlock()
	return errors.Join(err, p.objs.Close())
}

// NewReader opens a reader on the event ring. The programs wake it only every
// Options.WakeupEvery records per CPU (or when the ring is half full), so the reader
// must use a deadline (ringbuf.Reader.SetDeadline) to pick up a quiet tail: records
// written without a wake-up are returned once the deadline passes, followed by
// os.ErrDeadlineExceeded. Decode records with DecodeEvent.
func (p *Probes) NewReader() (*ringbuf.Reader, error) {
	return ringbuf.NewReader(p.objs.Events)
}

// SetThresholds replaces the per-command latency thresholds, indexed by SMB2 command
// code. The programs read them on every completion: the change applies to the next one.
func (p *Probes) SetThresholds(t *[smb.NumCommands]Threshold) error {
	for cmd, th := range t {
		if th.Latency < 0 {
			return fmt.Errorf("bpf: negative threshold %v for %s", th.Latency, smb.Command(uint16(cmd)))
		}
	}
	for cmd, th := range t {
		v := aodThreshold{Ns: uint64(th.Latency)}
		if th.Tracked {
			v.Enabled = 1
		}
		if err := p.objs.Thresholds.Put(uint32(cmd), &v); err != nil {
			return fmt.Errorf("bpf: set threshold of %s: %w", smb.Command(uint16(cmd)), err)
		}
	}
	return nil
}

// SetErrorFilter replaces the set of failures that become error events; it applies to
// the next completion. The writes are ordered so that while they happen the programs
// select at least every failure both the old and the new filter select.
func (p *Probes) SetErrorFilter(f ErrorFilter) error {
	return setErrorFilter(f, p.objs.Config, p.objs.TrackedStatuses, p.objs.TrackedErrnos)
}

// SetPerCgroup makes the SMB histograms and error counts of the requests that
// complete from now on count per issuer cgroup too (HistogramSample.CgroupID), or not.
// The series counted so far stay as they are.
func (p *Probes) SetPerCgroup(on bool) error {
	var cfg aodConfig
	if err := p.objs.Config.Lookup(uint32(0), &cfg); err != nil {
		return fmt.Errorf("bpf: read config: %w", err)
	}
	cfg.PerCgroup = 0
	if on {
		cfg.PerCgroup = 1
	}
	if err := p.objs.Config.Put(uint32(0), &cfg); err != nil {
		return fmt.Errorf("bpf: set config: %w", err)
	}
	return nil
}

// setErrorFilter writes f into a protocol's filter maps (struct config, and the
// tracked status and errno sets).
func setErrorFilter(f ErrorFilter, config, statuses, errnos *ebpf.Map) error {
	for _, e := range f.Errnos {
		if e <= 0 {
			return fmt.Errorf("bpf: errno %d is not a positive errno value", e)
		}
	}
	setAll := func(all bool) error {
		var cfg aodConfig
		if err := config.Lookup(uint32(0), &cfg); err != nil {
			return fmt.Errorf("bpf: read config: %w", err)
		}
		cfg.TrackAllFailures = 0
		if all {
			cfg.TrackAllFailures = 1
		}
		if err := config.Put(uint32(0), &cfg); err != nil {
			return fmt.Errorf("bpf: set config: %w", err)
		}
		return nil
	}
	if f.All {
		if err := setAll(true); err != nil {
			return err
		}
	}
	if err := replaceSet(statuses, f.Statuses); err != nil {
		return fmt.Errorf("bpf: tracked statuses: %w", err)
	}
	if err := replaceSet(errnos, f.Errnos); err != nil {
		return fmt.Errorf("bpf: tracked errnos: %w", err)
	}
	if !f.All {
		return setAll(false)
	}
	return nil
}

// replaceSet makes the keys of a u8-valued hash map exactly want: new keys first, then
// the stale ones deleted.
func replaceSet[K comparable](m *ebpf.Map, want []K) error {
	if uint32(len(want)) > m.MaxEntries() {
		return fmt.Errorf("%d entries exceed the map's %d", len(want), m.MaxEntries())
	}
	keep := make(map[K]bool, len(want))
	one := uint8(1)
	for _, k := range want {
		keep[k] = true
		if err := m.Put(k, one); err != nil {
			return err
		}
	}
	var (
		k     K
		v     uint8
		stale []K
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		if !keep[k] {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	_, err := deleteAll(m, stale)
	return err
}

// Counters returns the loss and activity counters summed over CPUs.
func (p *Probes) Counters() (Counters, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	vals := p.scratch.counterVals(p.ncpu)
	read := func(idx aodCounter) (uint64, error) {
		if err := p.objs.Counters.Lookup(uint32(idx), vals); err != nil {
			return 0, fmt.Errorf("bpf: read counter %d: %w", idx, err)
		}
		var sum uint64
		for _, v := range vals {
			sum += v
		}
		return sum, nil
	}
	var c Counters
	var errs []error
	for _, f := range []struct {
		idx aodCounter
		dst *uint64
	}{
		{aodCounterAOD_CTR_RING_FULL, &c.RingReserveFailures},
		{aodCounterAOD_CTR_ORPHANS, &c.Orphans},
		{aodCounterAOD_CTR_DOUBLE_DONE, &c.DoubleCompletions},
		{aodCounterAOD_CTR_FILTERED, &c.EventsFiltered},
		{aodCounterAOD_CTR_EMITTED, &c.EventsEmitted},
		{aodCounterAOD_CTR_START_COLLISION, &c.StartCollisions},
		{aodCounterAOD_CTR_START_EVICTED, &c.StartEvictions},
		{aodCounterAOD_CTR_HIST_FULL, &c.HistogramMapFull},
		{aodCounterAOD_CTR_ERRORS_FULL, &c.ErrorMapFull},
		{aodCounterAOD_CTR_CHAIN_RELEASED, &c.ChainReleased},
	} {
		v, err := read(f.idx)
		*f.dst = v
		errs = append(errs, err)
	}
	c.AgedOut = p.agedOut.Load()
	return c, errors.Join(errs...)
}

// ProgramStats returns each program's run statistics from the kernel, keyed by program
// name (aod_cmd_enter, aod_cmd_done, aod_cmd_err, aod_reconnect, aod_connect_done,
// aod_connect_err, and aod_mid_alloc and aod_status_map once the fallback is loaded).
// The kernel counts run time and runs only while BPF statistics are
// enabled (sysctl kernel.bpf_stats_enabled=1, or an ebpf.EnableStats handle held by
// some process), since timing costs every run a little; otherwise they stay where they
// were, 0 if never enabled. RecursionMisses is always counted (Linux 5.12+).
func (p *Probes) ProgramStats() (map[string]*ebpf.ProgramStats, error) {
	return programStats(p.programs())
}

// programStats returns the kernel statistics of progs, by name.
func programStats(progs map[string]*ebpf.Program) (map[string]*ebpf.ProgramStats, error) {
	stats := make(map[string]*ebpf.ProgramStats, len(progs))
	var errs []error
	for name, prog := range progs {
		st, err := prog.Stats()
		if err != nil {
			errs = append(errs, fmt.Errorf("bpf: stats of %s: %w", name, err))
			continue
		}
		stats[name] = st
	}
	return stats, errors.Join(errs...)
}

// programs returns every program by name.
func (p *Probes) programs() map[string]*ebpf.Program {
	o := &p.objs
	progs := map[string]*ebpf.Program{
		aodProgAodCmdEnter:    o.AodCmdEnter,
		aodProgAodCmdDone:     o.AodCmdDone,
		aodProgAodCmdErr:      o.AodCmdErr,
		aodProgAodReconnect:   o.AodReconnect,
		aodProgAodConnectDone: o.AodConnectDone,
		aodProgAodConnectErr:  o.AodConnectErr,
	}
	if fb := p.fallback.Load(); fb != nil {
		progs[aodfallbackProgAodMidAlloc] = fb.AodMidAlloc
		progs[aodfallbackProgAodStatusMap] = fb.AodStatusMap
	}
	return progs
}
