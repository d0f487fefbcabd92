//go:build linux

package testprog

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Objects are the loaded test programs.
type Objects struct {
	// Slot returns the production histogram slot of the latency in its first argument.
	Slot *ebpf.Program
	// Fill writes up to its first argument records into the ring without waking the
	// reader and returns how many fitted.
	Fill *ebpf.Program
	// Empty does nothing: its run time is the fixed cost of running a program.
	Empty *ebpf.Program
	// Count adds one to Runs[0] each time it runs.
	Count *ebpf.Program
	Runs  *ebpf.Map

	objs testprogObjects
	// arena is the arena map's value mapped into memory, once Arena mapped it.
	arena []byte
}

// Load loads the test programs. A non-nil events map (the production ring) replaces
// their own ring, whose size is made to match.
func Load(events *ebpf.Map) (*Objects, error) {
	spec, err := loadTestprog()
	if err != nil {
		return nil, err
	}
	var opts ebpf.CollectionOptions
	if events != nil {
		spec.Maps[testprogMapEvents].MaxEntries = events.MaxEntries()
		opts.MapReplacements = map[string]*ebpf.Map{testprogMapEvents: events}
	}
	o := &Objects{}
	if err := spec.LoadAndAssign(&o.objs, &opts); err != nil {
		return nil, fmt.Errorf("load test programs: %w", err)
	}
	o.Slot, o.Fill, o.Empty = o.objs.AodTestSlot, o.objs.AodTestFill, o.objs.AodTestEmpty
	o.Count, o.Runs = o.objs.AodTestCount, o.objs.Runs
	return o, nil
}

// Close releases the programs and maps.
func (o *Objects) Close() error {
	if o.arena != nil {
		unix.Munmap(o.arena)
		o.arena = nil
	}
	return o.objs.Close()
}

// Arena returns a block of kernel memory the test writes through mem, and its kernel
// address: where a test lays out the kernel structures a program reads through the
// pointers its tracepoint passes (bpf_probe_read_kernel reads it like any kernel
// memory). It stays valid until Close.
func (o *Objects) Arena() (mem []byte, addr uint64, err error) {
	if o.arena == nil {
		size := int(o.objs.Arena.ValueSize())
		m, err := unix.Mmap(o.objs.Arena.FD(), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return nil, 0, fmt.Errorf("map the arena: %w", err)
		}
		o.arena = m
	}
	if _, err := o.objs.AodTestArena.Run(&ebpf.RunOptions{Context: []uint64{0}}); err != nil {
		return nil, 0, fmt.Errorf("run aod_test_arena: %w", err)
	}
	if err := o.objs.ArenaAddr.Lookup(uint32(0), &addr); err != nil {
		return nil, 0, err
	}
	if addr == 0 {
		return nil, 0, fmt.Errorf("the arena's address is hidden")
	}
	return o.arena, addr, nil
}

// Loaded loads the test programs as Load does (after Require), skipping tb where BPF
// is not available and failing it on other errors; they are closed when tb ends.
func Loaded(tb testing.TB, events *ebpf.Map) *Objects {
	tb.Helper()
	Require(tb)
	o, err := Load(events)
	CheckLoad(tb, err)
	tb.Cleanup(func() { o.Close() })
	return o
}
