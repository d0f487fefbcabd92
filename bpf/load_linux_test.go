//go:build linux

package bpf

import (
	"testing"

	"github.com/linuxdiag/aod/bpf/internal/testprog"
)

// loadProbes loads the production probes for the tests that need the package's
// insides (the tests of what the programs do use bpf/bpftest, from package bpf_test),
// skipping where BPF cannot be loaded.
func loadProbes(tb testing.TB, opts Options) *Probes {
	tb.Helper()
	testprog.Require(tb)
	p, err := Load(opts)
	testprog.CheckLoad(tb, err)
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Error(err)
		}
	})
	return p
}
