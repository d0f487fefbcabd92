// Command bench measures what aod costs: the kernel probes per request next to
// yardsticks, the agent's CPU at steady request rates, its memory, its export
// payload, its replay throughput and its anomaly-to-bundle time. `make bench` runs it
// (as root); bench/README.md explains each figure and its goal.
//
// Every figure is printed as one line, `aod-bench <name> <value> <unit>`, and written
// with the machine's description to the results file.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == agentCommand {
		os.Exit(runAgentChild(os.Args[2:]))
	}
	results := flag.String("results", "bench-results.txt", "file the figures and the machine's description are written to")
	rate := flag.Duration("rate-duration", rateDuration, "how long each steady request rate is held")
	profile := flag.String("agent-cpuprofile", "", "write the CPU profile of the agent the idle, pair, bundle and steady-rate phases measure to this file")
	flag.Parse()
	if err := run(*results, *rate, *profile); err != nil {
		fmt.Fprintln(os.Stderr, "aod-bench:", err)
		os.Exit(1)
	}
}

// figure is one measured value.
type figure struct {
	name  string
	value float64
	unit  string
}

// report prints figures as they come and keeps them for the results file.
type report struct {
	out     io.Writer
	figures []figure
}

func (r *report) add(name string, value float64, unit string) {
	f := figure{name, value, unit}
	r.figures = append(r.figures, f)
	fmt.Fprintln(r.out, f.line())
}

func (f figure) line() string {
	return "aod-bench " + f.name + " " + strconv.FormatFloat(f.value, 'g', 6, 64) + " " + f.unit
}
