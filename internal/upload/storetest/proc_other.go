//go:build !linux

package storetest

import "syscall"

// procAttr puts the server in its own process group, so Kill ends its children too.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
