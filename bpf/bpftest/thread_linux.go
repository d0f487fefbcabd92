package bpftest

import "golang.org/x/sys/unix"

func gettid() uint32 { return uint32(unix.Gettid()) }
