package actions

import "syscall"

// ProcAttr is how aod starts every external program: in a process group of its own,
// so that a timeout kills the program and all its children, and killed by the kernel
// should aod itself die first, so no collection outlives the agent.
func ProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
