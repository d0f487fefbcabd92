//go:build linux

package bpf

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
)

// memlock is the kernel memory a map takes, as its fdinfo reports it.
func memlock(t *testing.T, m *ebpf.Map) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", m.FD()))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "memlock:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no memlock in fdinfo")
	return 0
}

// TestHistogramMemoryFollowsLiveSeries checks that a histogram costs its size once,
// not once per possible CPU, and, where the kernel allocates on insert, only once it
// is used: a host's CPUs and the maps' capacity do not multiply the memory.
func TestHistogramMemoryFollowsLiveSeries(t *testing.T) {
	const capacity = 4096
	p := loadProbes(t, Options{HistogramEntries: capacity, ErrorEntries: capacity})
	for _, m := range []*ebpf.Map{p.objs.Histograms, p.objs.Errors} {
		if m.Type() != ebpf.Hash {
			t.Errorf("map %v is a %v: one value per CPU", m, m.Type())
		}
	}
	if !kernelAllocatesOnInsert() {
		t.Skip("kernel before 6.1: the maps are preallocated")
	}
	valueSize := uint64(p.objs.Histograms.ValueSize())
	empty := memlock(t, p.objs.Histograms)
	if empty > capacity*valueSize/8 {
		t.Fatalf("empty histogram map takes %d bytes; %d entries of %d bytes are preallocated", empty, capacity, valueSize)
	}
	const series = 100
	for i := range uint32(series) {
		if err := p.objs.Histograms.Put(aodReqKey{SessionId: 1, TreeId: i, Command: 8}, aodHistVal{}); err != nil {
			t.Fatal(err)
		}
	}
	grown := memlock(t, p.objs.Histograms) - empty
	if grown < series*valueSize || grown > 2*series*valueSize {
		t.Fatalf("%d histograms grew the map by %d bytes, want about %d", series, grown, series*valueSize)
	}
}
