package storetest

import "syscall"

// procAttr puts the server in its own process group (Kill ends its children too)
// and has the kernel kill it if the test binary dies first.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
