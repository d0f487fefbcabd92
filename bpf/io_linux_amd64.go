package bpf

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Sizes of the io maps, from include/aod.h.
const (
	ioMaxSyscalls = 512
	ioMaxErrno    = 256
	ioPathMax     = 128
	ioNumOpSlots  = 32
)

// IOProbes are the io probe (io.c) and its maps, writing to the ring and counters of
// the Probes that loaded them (Probes.LoadIO). Methods are safe for concurrent use.
type IOProbes struct {
	objs aodioObjects

	attachMu sync.Mutex // guards link
	link     link.Link

	mu      sync.Mutex // guards mounts and the scratch buffers
	mounts  []aodioIoPathKey
	errKeys []aodioIoKey
	errVals []uint64
}

// IOSupported reports whether the io probe is built for this architecture.
const IOSupported = true

// LoadIO loads the io probe through the verifier onto p's ring, counters and wake-up
// policy, with its system call table written and an empty scope (nothing counted
// until SetScope). Nothing is attached yet.
func (p *Probes) LoadIO() (*IOProbes, error) {
	spec, err := loadAodio()
	if err != nil {
		return nil, fmt.Errorf("bpf: %w", err)
	}
	spec.Maps[aodioMapEvents].MaxEntries = p.opts.RingBytes
	if err := spec.Variables["wakeup_every"].Set(p.opts.WakeupEvery); err != nil {
		return nil, fmt.Errorf("bpf: set wakeup_every: %w", err)
	}
	m := &p.objs.aodMaps
	i := &IOProbes{}
	err = spec.LoadAndAssign(&i.objs, &ebpf.CollectionOptions{
		MapReplacements: map[string]*ebpf.Map{
			aodioMapCounters:  m.Counters,
			aodioMapEvents:    m.Events,
			aodioMapWakeupSeq: m.WakeupSeq,
		},
	})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("bpf: the verifier rejected the io probe: %+v", ve)
		}
		return nil, fmt.Errorf("bpf: load the io probe (it needs the kernel's BTF): %w", err)
	}
	if err := i.writeSyscalls(); err != nil {
		i.objs.Close()
		return nil, err
	}
	return i, nil
}

func (i *IOProbes) writeSyscalls() error {
	for _, c := range ioCalls {
		if c.nr >= ioMaxSyscalls {
			return fmt.Errorf("bpf: system call %d over the table's %d", c.nr, ioMaxSyscalls)
		}
		v := aodioIoSyscall{OpPlus1: c.op + 1, Arg: c.arg, FdArg: c.fd, PathArg: c.path, FlagArg: c.flag, FlagMask: c.mask}
		if c.alt != 0 {
			v.AltOpPlus1 = c.alt + 1
		}
		if c.lockCmd {
			v.Flags = 1 // AOD_IO_F_LOCK_CMD
		}
		if err := i.objs.IoSyscalls.Put(c.nr, &v); err != nil {
			return fmt.Errorf("bpf: io system call %d: %w", c.nr, err)
		}
	}
	return nil
}

// Attach attaches the probe to the raw syscall exit tracepoint.
func (i *IOProbes) Attach() error {
	i.attachMu.Lock()
	defer i.attachMu.Unlock()
	if i.link != nil {
		return errors.New("bpf: io probe already attached")
	}
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sys_exit", Program: i.objs.AodIoExit})
	if err != nil {
		return fmt.Errorf("bpf: attach sys_exit: %w", describeAttachError(err))
	}
	i.link = l
	return nil
}

// Detach detaches the probe; the maps keep their contents.
func (i *IOProbes) Detach() {
	i.attachMu.Lock()
	defer i.attachMu.Unlock()
	if i.link != nil {
		i.link.Close()
		i.link = nil
	}
}

// Close detaches the probe and releases it and the io maps (not the ring or counters).
func (i *IOProbes) Close() error {
	i.Detach()
	return i.objs.Close()
}

// SetScope replaces the mounts the probe counts failures on; it applies to the next
// failure. A mount point longer than the kernel's key (127 bytes with its '/') is
// refused.
func (i *IOProbes) SetScope(s IOScope) error {
	var keys []aodioIoPathKey
	var vals []aodioIoMount
	var ids []uint32
	for _, m := range s.Mounts {
		ids = append(ids, m.ID)
		point := m.Point
		if point != "/" {
			point += "/"
		}
		if len(point) == 0 || point[0] != '/' || len(point) >= ioPathMax {
			return fmt.Errorf("bpf: io mount point %q: not an absolute path shorter than %d bytes", m.Point, ioPathMax-1)
		}
		var k aodioIoPathKey
		k.Prefixlen = uint32(8 * len(point))
		copy(k.Path[:], point)
		keys = append(keys, k)
		vals = append(vals, aodioIoMount{MntId: m.ID, Magic: m.Magic})
	}
	if uint32(len(keys)) > i.objs.IoMounts.MaxEntries() {
		return fmt.Errorf("bpf: %d io mounts exceed the map's %d", len(keys), i.objs.IoMounts.MaxEntries())
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	for n := range keys {
		if err := i.objs.IoMounts.Put(&keys[n], &vals[n]); err != nil {
			return fmt.Errorf("bpf: io mount %q: %w", s.Mounts[n].Point, err)
		}
	}
	for _, old := range i.mounts {
		if !slices.Contains(keys, old) {
			if err := i.objs.IoMounts.Delete(&old); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("bpf: io mounts: %w", err)
			}
		}
	}
	i.mounts = keys
	if err := replaceSet(i.objs.IoMountIds, ids); err != nil {
		return fmt.Errorf("bpf: io mount ids: %w", err)
	}
	if err := replaceSet(i.objs.IoMagics, s.Magics); err != nil {
		return fmt.Errorf("bpf: io file system types: %w", err)
	}
	return i.setConfig(func(c *aodioIoConfig) { c.ScopeAll = b32(s.All) })
}

// SetErrorFilter replaces the failures that become error events; it applies to the
// next failure.
func (i *IOProbes) SetErrorFilter(f IOErrorFilter) error {
	var tracked [ioNumOpSlots * ioMaxErrno]uint8
	for _, p := range f.Pairs {
		if p.Op < -1 || p.Op >= int(ioNumOps) || p.Errno < 0 || p.Errno >= ioMaxErrno {
			return fmt.Errorf("bpf: io pair (op %d, errno %d) out of range (op below %d, errno below %d)", p.Op, p.Errno, ioNumOps, ioMaxErrno)
		}
		for op := range int(ioNumOps) {
			if p.Op != -1 && p.Op != op {
				continue
			}
			for e := int32(1); e < ioMaxErrno; e++ {
				if p.Errno == 0 || p.Errno == e {
					tracked[op*ioMaxErrno+int(e)] = 1
				}
			}
		}
	}
	keys := make([]uint32, len(tracked))
	for k := range keys {
		keys[k] = uint32(k)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if _, err := i.objs.IoTracked.BatchUpdate(keys, tracked[:], nil); err != nil {
		return fmt.Errorf("bpf: io tracked failures: %w", err)
	}
	return i.setConfig(func(c *aodioIoConfig) { c.TrackAll = b32(f.All) })
}

// setConfig changes the probe's config; the caller holds i.mu.
func (i *IOProbes) setConfig(change func(*aodioIoConfig)) error {
	var c aodioIoConfig
	if err := i.objs.IoCfg.Lookup(uint32(0), &c); err != nil {
		return fmt.Errorf("bpf: io config: %w", err)
	}
	change(&c)
	if err := i.objs.IoCfg.Put(uint32(0), &c); err != nil {
		return fmt.Errorf("bpf: io config: %w", err)
	}
	return nil
}

func b32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// Errors appends to dst[:0] one sample per (mount, operation, errno) failure count,
// cumulative since load.
func (i *IOProbes) Errors(dst []IOErrorSample) ([]IOErrorSample, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	dst = dst[:0]
	err := forEachBatch(i.objs.IoErrors, &i.errKeys, &i.errVals, func(k *aodioIoKey, v *uint64) {
		dst = append(dst, IOErrorSample{MountID: k.MntId, Magic: k.Magic, Op: k.Op, Errno: k.Err, Count: *v})
	})
	if err != nil {
		return dst, fmt.Errorf("bpf: read io errors: %w", err)
	}
	return dst, nil
}

// ProgramStats returns the io program's kernel statistics (aod_io_exit); see
// Probes.ProgramStats.
func (i *IOProbes) ProgramStats() (map[string]*ebpf.ProgramStats, error) {
	return programStats(map[string]*ebpf.Program{aodioProgAodIoExit: i.objs.AodIoExit})
}
