package archive

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// checkPlatform reports whether bundles can be written here: on Linux, yes.
func checkPlatform() error { return nil }

func modTime(st *unix.Stat_t) time.Time { return time.Unix(st.Mtim.Unix()) }

// renameNoReplace renames from to to within dirfd, failing if to exists: names are
// unique within a process, and this keeps them unique against another writer too.
func renameNoReplace(dirfd int, from, to string) error {
	err := unix.Renameat2(dirfd, from, dirfd, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) { // a filesystem without RENAME_NOREPLACE
		err = unix.Renameat(dirfd, from, dirfd, to)
	}
	return err
}
