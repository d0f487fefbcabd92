// Package capture runs aod's long-running captures, tcpdump and trace-cmd, one per
// protocol with the user's arguments, and snapshots what they hold into a bundle when
// an anomaly fires. Both keep a bounded, rotating window of the recent past: tcpdump
// through its own file ring (-C/-W), trace-cmd through the kernel's ftrace ring buffer
// in an instance of its own. A capture that keeps failing is restarted with backoff
// and then disabled with a clear log, never retried in a tight loop.
package capture

import "github.com/linuxdiag/aod/internal/captureargs"

// Tools, as the configuration names them.
const (
	ToolTcpdump  = captureargs.Tcpdump
	ToolTraceCmd = captureargs.TraceCmd
)
