//go:build !linux

package wallclock

import "time"

// Elsewhere there are no kernel timestamps to convert; the process's own monotonic
// clock keeps the package usable (and the collector distribution buildable).
var start = time.Now()

func monotonic() int64 { return int64(time.Since(start)) }
func realtime() int64  { return time.Now().UnixNano() }
func boottime() int64  { return monotonic() }
