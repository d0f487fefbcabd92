//go:build linux

package main

import (
	"fmt"
	"time"

	"github.com/cilium/ebpf"

	"github.com/linuxdiag/aod/internal/smb"
)

// pairRuns is how many request pairs kernel_pair_ns and minimal_pair_ns average over.
const pairRuns = 500_000

// pairCost measures the agent's enter+done pair (a successful READ, no event due: the
// common path) and the minimal pair, interleaved in one loop so that both meet the
// same cache and frequency conditions, by the kernel's BPF run-time statistics (the
// test-run syscalls around the programs are not counted; the statistics' own cost per
// run is, equally in both).
func pairCost(d *driver) (aodNs, minimalNs float64, err error) {
	var objs minimalObjects
	if err := loadMinimalObjects(&objs, nil); err != nil {
		return 0, 0, fmt.Errorf("load the minimal probe: %w", err)
	}
	defer objs.Close()
	progs := []*ebpf.Program{d.k.enter, d.k.done, objs.MinimalEnter, objs.MinimalDone}
	runs := make([]*runner, len(progs))
	for i, p := range progs {
		runs[i] = newRunner(p, 4)
	}
	stats := func() (t [4]time.Duration, n [4]uint64, err error) {
		for i, p := range progs {
			st, err := p.Stats()
			if err != nil {
				return t, n, err
			}
			t[i], n[i] = st.Runtime, st.RunCount
		}
		return t, n, nil
	}
	r := request{tree: 1, command: smb.Read}
	t0, n0, err := stats()
	if err != nil {
		return 0, 0, err
	}
	for range pairRuns {
		d.mid++
		for _, run := range runs {
			a := run.args
			a[0], a[1], a[2], a[3] = uint64(r.tree), benchSession, uint64(r.command), d.mid
			if err := run.run(); err != nil {
				return 0, 0, err
			}
		}
	}
	t1, n1, err := stats()
	if err != nil {
		return 0, 0, err
	}
	var per [4]float64
	for i := range per {
		if n1[i]-n0[i] != pairRuns {
			return 0, 0, fmt.Errorf("statistics counted %d runs of program %d, want %d (are BPF statistics enabled?)", n1[i]-n0[i], i, pairRuns)
		}
		per[i] = float64(t1[i]-t0[i]) / pairRuns
	}
	return per[0] + per[1], per[2] + per[3], nil
}
