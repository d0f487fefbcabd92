package main

import (
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/bpf/bpftest"
	"github.com/linuxdiag/aod/internal/smb"
)

// TestYardsticks runs the yardstick pairs through the verifier and interleave, and
// checks that each did its work: the minimal pair counted every run, the floor pair
// paired every request and counted its latency once.
func TestYardsticks(t *testing.T) {
	bpftest.Require(t)
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		t.Fatalf("enable BPF run-time statistics: %v", err)
	}
	defer stats.Close()
	var y yardsticksObjects
	if err := loadYardsticksObjects(&y, nil); err != nil {
		t.Fatal(err)
	}
	defer y.Close()

	const runs = 1000
	var mid uint64
	ns, err := interleave([][2]*ebpf.Program{{y.MinimalEnter, y.MinimalDone}, {y.FloorEnter, y.FloorDone}, {y.ClockOnly, y.ClockOnly}},
		runs, func() uint64 { mid++; return mid })
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range ns {
		if n <= 0 {
			t.Errorf("pair %d: %v ns per request", i, n)
		}
	}

	for idx := range uint32(2) {
		var perCPU []uint64
		if err := y.MinimalCounts.Lookup(idx, &perCPU); err != nil {
			t.Fatal(err)
		}
		var n uint64
		for _, c := range perCPU {
			n += c
		}
		if n != runs {
			t.Errorf("minimal counter %d: %d, want %d", idx, n, runs)
		}
	}

	var h yardsticksHistVal
	if err := y.FloorHist.Lookup(yardsticksReqKey{SessionId: benchSession, Command: uint16(smb.Read)}, &h); err != nil {
		t.Fatalf("the floor pair counted no READ latency: %v", err)
	}
	var n uint64
	for _, c := range h.Slots {
		n += c
	}
	if n != runs || h.SumNs == 0 {
		t.Errorf("the floor histogram counted %d latencies (sum %d ns), want %d", n, h.SumNs, runs)
	}
}
