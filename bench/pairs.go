//go:build linux

package main

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/linuxdiag/aod/internal/smb"
)

// pairRuns is how many request pairs the pair figures average over.
const pairRuns = 500_000

// pairFigures are the kernel's run time per request pair, in ns: the agent's
// enter+done pair and yardsticks.c's.
type pairFigures struct{ aod, minimal, floor, clock float64 }

// pairCost measures the agent's enter+done pair (a successful READ, no event due: the
// common path) and the yardsticks' pairs, interleaved in one loop so that all meet the
// same cache and frequency conditions.
func pairCost(d *driver) (pairFigures, error) {
	var y yardsticksObjects
	if err := loadYardsticksObjects(&y, nil); err != nil {
		return pairFigures{}, fmt.Errorf("load the yardstick probes: %w", err)
	}
	defer y.Close()
	ns, err := interleave(
		[][2]*ebpf.Program{{d.k.enter, d.k.done}, {y.MinimalEnter, y.MinimalDone}, {y.FloorEnter, y.FloorDone}, {y.ClockOnly, y.ClockOnly}},
		pairRuns, func() uint64 { d.mid++; return d.mid })
	if err != nil {
		return pairFigures{}, err
	}
	return pairFigures{aod: ns[0], minimal: ns[1], floor: ns[2], clock: ns[3]}, nil
}

// interleave runs every pair's enter then done for a READ with a new mid (from
// nextMid), the pairs in turn, runs times, and returns each pair's mean run time per
// request by the kernel's BPF run-time statistics: the test-run system calls around
// the programs are not counted, the statistics' own cost per run is, equally in all.
// A program may be both ends of a pair, or in several pairs.
func interleave(pairs [][2]*ebpf.Program, runs int, nextMid func() uint64) ([]float64, error) {
	uses := map[*ebpf.Program]int{}
	runners := make([][2]*runner, len(pairs))
	for i, p := range pairs {
		runners[i] = [2]*runner{newRunner(p[0], 4), newRunner(p[1], 4)}
		uses[p[0]]++
		uses[p[1]]++
	}
	stats := func() (map[*ebpf.Program]ebpf.ProgramStats, error) {
		s := make(map[*ebpf.Program]ebpf.ProgramStats, len(uses))
		for p := range uses {
			st, err := p.Stats()
			if err != nil {
				return nil, err
			}
			s[p] = *st
		}
		return s, nil
	}
	s0, err := stats()
	if err != nil {
		return nil, err
	}
	for range runs {
		mid := nextMid()
		for _, pair := range runners {
			for _, r := range pair {
				a := r.args
				a[0], a[1], a[2], a[3] = 1, benchSession, uint64(smb.Read), mid
				if err := r.run(); err != nil {
					return nil, err
				}
			}
		}
	}
	s1, err := stats()
	if err != nil {
		return nil, err
	}
	for p, n := range uses {
		if got, want := s1[p].RunCount-s0[p].RunCount, uint64(n*runs); got != want {
			return nil, fmt.Errorf("statistics counted %d runs of %v, want %d (are BPF statistics enabled?)", got, p, want)
		}
	}
	ns := make([]float64, len(pairs))
	for i, pair := range pairs {
		for _, p := range pair {
			ns[i] += float64(s1[p].Runtime-s0[p].Runtime) / float64(uses[p]*runs)
		}
	}
	return ns, nil
}
