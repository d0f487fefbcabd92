// Package pidlock keeps a second aod agent from running beside the first. The agent
// holds an exclusive flock on a file in its output directory for as long as it runs,
// with its process id written in it. The kernel drops the lock when the process exits,
// however it exits, so a crashed agent never leaves a lock behind: the file stays, the
// lock does not.
package pidlock

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// Name is the lock file's name inside the output directory.
const Name = "aod.lock"

// ErrHeld says another process holds the lock.
var ErrHeld = errors.New("another aod agent is running")

// HeldError is returned when another process holds the lock; it matches ErrHeld.
type HeldError struct {
	Path string
	// PID is what the holder wrote in the file; 0 if it could not be read.
	PID int
}

func (e *HeldError) Error() string {
	who := "another aod agent"
	if e.PID > 0 {
		who += " (pid " + strconv.Itoa(e.PID) + ")"
	}
	return who + " is running: it holds " + e.Path + "; stop it first, or give this one another aod_output_dir"
}

// Is makes errors.Is(err, ErrHeld) true.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// Lock is a held lock.
type Lock struct {
	f *os.File
}

// Acquire creates dir if needed and takes the lock of dir/Name without waiting,
// writing this process's id in it. A symlink in the file's place is not followed.
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	path := filepath.Join(dir, Name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%s is not a regular file; remove it", path)
		}
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &HeldError{Path: path, PID: readPID(f)}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt(pid, 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: write the pid: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// readPID reads the holder's process id, 0 if there is none.
func readPID(f *os.File) int {
	b := make([]byte, 32)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0
	}
	return parsePID(b[:n])
}

// parsePID parses what a holder wrote: a positive process id, or 0.
func parsePID(b []byte) int {
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// Path is the lock file's path.
func (l *Lock) Path() string { return l.f.Name() }

// Release drops the lock. The file stays: removed, another agent that had opened it
// but not locked it yet would lock the removed file while a third locks a new one.
func (l *Lock) Release() error { return l.f.Close() }
