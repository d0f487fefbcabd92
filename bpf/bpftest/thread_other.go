//go:build !linux

package bpftest

// gettid is never reached elsewhere than Linux: Require skips first.
func gettid() uint32 { return 0 }
