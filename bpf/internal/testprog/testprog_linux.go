//go:build linux

package testprog

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
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
func (o *Objects) Close() error { return o.objs.Close() }

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
