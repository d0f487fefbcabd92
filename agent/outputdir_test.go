package agent

import (
	"errors"
	"io/fs"
	"strings"
	"syscall"
	"testing"
)

func TestOutputDirErrorNamesTheDropIn(t *testing.T) {
	for _, c := range []struct {
		errno    syscall.Errno
		dropIn   bool
		contains string
	}{
		{syscall.EROFS, true, "read-only file system"},
		{syscall.EACCES, true, "permission denied"},
		{syscall.EPERM, true, "operation not permitted"},
		{syscall.ENOSPC, false, "no space left on device"},
	} {
		cause := &fs.PathError{Op: "mkdir", Path: "/srv/aod", Err: c.errno}
		err := outputDirError("/srv/aod", cause)
		if !errors.Is(err, c.errno) {
			t.Errorf("%v: the cause is lost: %v", c.errno, err)
		}
		msg := err.Error()
		if got := strings.Contains(msg, "ReadWritePaths=/srv/aod") && strings.Contains(msg, "is not writable"); got != c.dropIn {
			t.Errorf("%v: names the drop-in = %v, want %v: %s", c.errno, got, c.dropIn, msg)
		}
		if !strings.Contains(msg, c.contains) || !strings.HasPrefix(msg, "bundles: ") {
			t.Errorf("%v: %s", c.errno, msg)
		}
	}
}
