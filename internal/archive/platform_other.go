//go:build !linux

package archive

import (
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// checkPlatform refuses other systems at OpenDir, before any file is touched: the
// no-replace rename and the stat fields bundles rely on are Linux's, and aod's
// sources (cifs, BPF) are Linux-only anyway.
func checkPlatform() error {
	return fmt.Errorf("archive: diagnostic bundles are written on Linux only, not on %s", runtime.GOOS)
}

// modTime and renameNoReplace are never reached: OpenDir fails first.
func modTime(*unix.Stat_t) time.Time { return time.Time{} }

func renameNoReplace(int, string, string) error { return checkPlatform() }
