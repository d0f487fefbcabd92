//go:build !linux

package actions

import "syscall"

// ProcAttr is how aod starts every external program: in a process group of its own,
// so that a timeout kills the program and all its children. (Only Linux can also
// have a program killed when aod dies.)
func ProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
