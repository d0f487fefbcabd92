// Command e2eguest runs inside the e2e guest (see test/e2e/guest/main.sh), which has
// neither curl nor Go:
//
//	e2eguest probe [-fallback auto|off|force] -ready FILE -out FILE
//
// loads and attaches aod's BPF programs, independently of the agent, creates the ready
// file (listing the attached tracepoints, and fallback functions as fexit/NAME) and, at
// SIGTERM or SIGINT, writes a guestprobe.Snapshot as JSON to the out file and exits.
// -fallback is bpf.Options.Fallback (force: measure requests with the fallback programs
// instead of the request tracepoints).
//
//	e2eguest scrape URL
//
// prints the body of an HTTP GET (the agent's Prometheus /metrics); it fails unless the
// answer is 200 OK.
//
// It only builds for Linux (the guest's OS); elsewhere it is a stub that says so, which
// keeps `go build ./...` working on any OS.
package main
