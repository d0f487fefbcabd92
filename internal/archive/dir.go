package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// BatchesDir is the subdirectory of aod_output_dir that holds the bundles (AODv2's
// layout).
const BatchesDir = "batches"

// dirMode is the mode of the output and batches directories: bundles hold kernel
// logs and process names, so only root reads them.
const dirMode = 0o700

// Dir is the batches directory, opened without following symlinks. Every operation
// on its files goes through the directory's descriptor (openat, renameat, unlinkat,
// fstatat with AT_SYMLINK_NOFOLLOW), so a symlink planted in place of a bundle or of
// the directory itself is never followed. Open it again for each bundle or sweep: a
// long-held descriptor would keep writing into a directory an administrator removed.
type Dir struct {
	f *os.File
}

// OpenDir creates aod_output_dir and its batches subdirectory (mode 0700) if needed
// and opens the latter. It refuses either directory when it is a symlink or is owned
// by another user, and tightens a wider mode to 0700.
func OpenDir(outputDir string) (*Dir, error) {
	if err := checkPlatform(); err != nil {
		return nil, err
	}
	if outputDir == "" {
		return nil, errors.New("archive: output directory is not set")
	}
	if err := os.MkdirAll(outputDir, dirMode); err != nil {
		return nil, fmt.Errorf("archive: create output directory: %w", err)
	}
	out, err := openDir(unix.AT_FDCWD, outputDir, outputDir)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	if err := unix.Mkdirat(int(out.Fd()), BatchesDir, dirMode); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("archive: create %s: %w", filepath.Join(outputDir, BatchesDir), err)
	}
	b, err := openDir(int(out.Fd()), BatchesDir, filepath.Join(outputDir, BatchesDir))
	if err != nil {
		return nil, err
	}
	return &Dir{f: b}, nil
}

// openDir opens name (relative to dirfd) as a directory without following a final
// symlink, checks its owner and tightens its mode.
func openDir(dirfd int, name, path string) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return nil, fmt.Errorf("archive: %s is not a directory (a symlink is not followed): %w", path, err)
		}
		return nil, fmt.Errorf("archive: open %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("archive: stat %s: %w", path, err)
	}
	if euid := os.Geteuid(); int(st.Uid) != euid {
		f.Close()
		return nil, fmt.Errorf("archive: %s is owned by uid %d, not by aod's uid %d", path, st.Uid, euid)
	}
	if st.Mode&0o7777 != dirMode {
		if err := unix.Fchmod(fd, dirMode); err != nil {
			f.Close()
			return nil, fmt.Errorf("archive: restrict %s to mode 0700: %w", path, err)
		}
	}
	return f, nil
}

// Path is the batches directory's path.
func (d *Dir) Path() string { return d.f.Name() }

// Close releases the directory.
func (d *Dir) Close() error { return d.f.Close() }

func (d *Dir) fd() int { return int(d.f.Fd()) }

// Available returns the bytes an unprivileged writer may still use on the
// directory's filesystem.
func (d *Dir) Available() (int64, error) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(d.fd(), &st); err != nil {
		return 0, fmt.Errorf("archive: statfs %s: %w", d.Path(), err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// Spool returns an anonymous read-write file on the directory's filesystem, for an
// action's output until it is appended to a bundle. It is unlinked at once, so its
// space returns when it is closed or the process dies; the name only exists for the
// instant between create and unlink, and IsTempName recognises it should a crash fall
// exactly there.
func (d *Dir) Spool() (*os.File, error) {
	name := spoolPrefix + strconv.FormatUint(rand.Uint64(), 36) + tempSuffix
	fd, err := unix.Openat(d.fd(), name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("archive: create spool file in %s: %w", d.Path(), err)
	}
	if err := unix.Unlinkat(d.fd(), name, 0); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("archive: unlink spool file: %w", err)
	}
	return os.NewFile(uintptr(fd), filepath.Join(d.Path(), name)), nil
}

// Entry is one directory entry, as lstat sees it.
type Entry struct {
	Name    string
	Mode    fs.FileMode // type bits and permissions; a symlink has fs.ModeSymlink
	Size    int64
	ModTime time.Time
}

// List returns the directory's entries without following symlinks. Entries removed
// while listing are left out.
func (d *Dir) List() ([]Entry, error) {
	if _, err := d.f.Seek(0, 0); err != nil {
		return nil, fmt.Errorf("archive: rewind %s: %w", d.Path(), err)
	}
	names, err := d.f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("archive: list %s: %w", d.Path(), err)
	}
	out := make([]Entry, 0, len(names))
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(d.fd(), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return nil, fmt.Errorf("archive: lstat %s: %w", filepath.Join(d.Path(), name), err)
		}
		out = append(out, Entry{Name: name, Mode: fileMode(uint32(st.Mode)), Size: st.Size, ModTime: modTime(&st)})
	}
	return out, nil
}

func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFREG:
	default:
		mode |= fs.ModeIrregular
	}
	return mode
}

// Remove deletes a regular file of the directory. unlinkat never follows a symlink,
// and a name that is not a regular file is refused, so nothing outside the directory
// is ever touched.
func (d *Dir) Remove(name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd(), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("archive: lstat %s: %w", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("archive: %s is not a regular file; not removed", name)
	}
	if err := unix.Unlinkat(d.fd(), name, 0); err != nil {
		return fmt.Errorf("archive: remove %s: %w", name, err)
	}
	return nil
}

// ErrInUse reports a temporary that a live writer still holds.
var ErrInUse = errors.New("archive: temporary is still being written")

// RemoveStaleTemp deletes a temporary left behind by a writer that died: one whose
// writer's lock is free and that has not been modified since cutoff. A live writer
// holds an exclusive flock for the file's whole life (the kernel drops it when the
// process dies), and takes it within microseconds of creating the file, so a file
// that is both unlocked and older than cutoff cannot belong to anyone. It returns the
// removed file's size, or ErrInUse.
func (d *Dir) RemoveStaleTemp(name string, cutoff time.Time) (int64, error) {
	if !IsTempName(name) {
		return 0, fmt.Errorf("archive: %s is not an aod temporary", name)
	}
	fd, err := unix.Openat(d.fd(), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("archive: open %s: %w", name, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, fmt.Errorf("archive: stat %s: %w", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return 0, fmt.Errorf("archive: %s is not a regular file; not removed", name)
	}
	if !modTime(&st).Before(cutoff) {
		return 0, ErrInUse
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return 0, ErrInUse
		}
		return 0, fmt.Errorf("archive: lock %s: %w", name, err)
	}
	if err := unix.Unlinkat(d.fd(), name, 0); err != nil {
		return 0, fmt.Errorf("archive: remove %s: %w", name, err)
	}
	return st.Size, nil
}

// Open opens a final bundle of the directory for reading, without following a
// symlink: anything but a regular file named as aod names bundles is refused.
func (d *Dir) Open(name string) (*os.File, error) {
	if _, ok := ParseBundleName(name); !ok {
		return nil, fmt.Errorf("archive: %s is not an aod bundle name", name)
	}
	fd, err := unix.Openat(d.fd(), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("archive: open %s: %w", filepath.Join(d.Path(), name), err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(d.Path(), name))
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("archive: stat %s: %w", f.Name(), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, fmt.Errorf("archive: %s is not a regular file", f.Name())
	}
	return f, nil
}
