package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

// outputDirError explains a bundle directory that cannot be written. Under the
// packaged systemd unit (ProtectSystem=strict) the likely cause of a read-only or
// refused aod_output_dir is that only /var/log/aod was made writable, and the fix is
// a drop-in, not a change to aod.
func outputDirError(dir string, err error) error {
	if errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("bundles: aod_output_dir %s is not writable: %w; under the aod systemd unit "+
			"only /var/log/aod is: add `ReadWritePaths=%s` in a drop-in (systemctl edit aod), "+
			"see docs/packaging.md", dir, err, dir)
	}
	return fmt.Errorf("bundles: %w", err)
}
