package actions

import (
	"os/exec"
	"sync"
	"syscall"
)

// umaskMu serialises the umask changes of Start: the umask belongs to the process.
var umaskMu sync.Mutex

// Start starts cmd with umask 077, so that every file the program creates (a
// tcpdump ring file, a trace-cmd trace.dat) is 0600 and every directory 0700:
// they hold packets and kernel events, for root only. The umask is the whole
// process's, so it is narrowed only for the instant of the fork; the files aod
// itself creates name their modes.
func Start(cmd *exec.Cmd) error {
	umaskMu.Lock()
	defer umaskMu.Unlock()
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	return cmd.Start()
}
