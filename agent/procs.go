package agent

import (
	"os"
	"runtime"
)

// Procs is how many threads the standalone agent lets run Go code at once
// (GOMAXPROCS) unless the GOMAXPROCS environment variable sets it. The agent's steady
// work is small and periodic (a ring drain every flush interval, a collection every
// few seconds); with more processors the Go scheduler wakes idle threads to look for
// work at every hand-off, and those wake-ups cost more than the work: one processor
// took a fifth off the agent's CPU at 10,000 and 100,000 requests a second (make
// bench). Bundle compression then uses one core, which also keeps it off the traced
// workload's.
const Procs = 1

// LimitProcs sets GOMAXPROCS to Procs unless the GOMAXPROCS environment variable is
// set, and returns the value in force. `aod run` calls it; a collector that embeds
// aod's components keeps its own.
func LimitProcs() int {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(Procs)
	}
	return runtime.GOMAXPROCS(0)
}
