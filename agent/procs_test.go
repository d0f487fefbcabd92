package agent

import (
	"runtime"
	"testing"
)

func TestLimitProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	t.Setenv("GOMAXPROCS", "")
	runtime.GOMAXPROCS(Procs + 2)
	if got := LimitProcs(); got != Procs || runtime.GOMAXPROCS(0) != Procs {
		t.Fatalf("LimitProcs without GOMAXPROCS in the environment = %d (in force %d), want %d", got, runtime.GOMAXPROCS(0), Procs)
	}
	// Set in the environment: the runtime applied it at start, and it stays.
	t.Setenv("GOMAXPROCS", "3")
	runtime.GOMAXPROCS(3)
	if got := LimitProcs(); got != 3 || runtime.GOMAXPROCS(0) != 3 {
		t.Fatalf("LimitProcs with GOMAXPROCS=3 in the environment = %d (in force %d), want 3", got, runtime.GOMAXPROCS(0))
	}
}
