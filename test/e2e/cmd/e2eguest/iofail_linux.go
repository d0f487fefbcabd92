package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// ioFailure is one kind of failed system call the io workload made, and how often it
// saw it fail: the workload's own count, which the agent's must equal.
type ioFailure struct {
	Mount string `json:"mount"`
	Op    string `json:"op"`
	Errno string `json:"errno"`
	Count int    `json:"count"`
}

// iofail makes N failing system calls of one kind on a mount and appends what it saw to
// the JSON lines file out: "missing" opens names that do not exist (OPEN ENOENT);
// "nospc" writes with O_DIRECT to a new file (WRITE, ENOSPC when the server's file system
// is full); "stale" opens a file, has the server remove it (server is the export's
// directory on the server, the same host here), drops the page cache and reads it (READ
// ESTALE);
// "create" creates new files exclusively (CREATE, failing as the mount says: EROFS on a
// read-only one); "exists" creates a file, then exclusively again (CREATE EEXIST), and
// removes it.
// Every call must fail with the same errno, else it is an error: the counts must be
// exact.
func iofail(kind, mount string, n int, out, server string) error {
	var f ioFailure
	f.Mount = mount
	var want unix.Errno
	existing := filepath.Join(mount, "aod-exists")
	var fd int
	switch kind {
	case "exists":
		if err := os.WriteFile(existing, nil, 0o644); err != nil {
			return err
		}
		defer os.Remove(existing)
	case "nospc":
		var err error
		if fd, err = unix.Open(filepath.Join(mount, "aod-nospc"), unix.O_CREAT|unix.O_WRONLY|unix.O_DIRECT, 0o644); err != nil {
			return err
		}
		defer os.Remove(filepath.Join(mount, "aod-nospc"))
		defer unix.Close(fd)
	case "stale":
		if server == "" {
			return errors.New("iofail stale needs the export's directory on the server")
		}
		name := "aod-stale"
		if err := os.WriteFile(filepath.Join(mount, name), make([]byte, 8192), 0o644); err != nil {
			return err
		}
		var err error
		if fd, err = unix.Open(filepath.Join(mount, name), unix.O_RDONLY, 0); err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := os.Remove(filepath.Join(server, name)); err != nil {
			return err
		}
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
			return err
		}
	}
	for i := range n {
		var err error
		switch kind {
		case "missing":
			f.Op = "OPEN"
			_, err = unix.Open(filepath.Join(mount, "aod-missing-"+strconv.Itoa(i)), unix.O_RDONLY, 0)
		case "create":
			f.Op = "CREATE"
			_, err = unix.Open(filepath.Join(mount, "aod-new-"+strconv.Itoa(i)), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o644)
		case "exists":
			f.Op = "CREATE"
			_, err = unix.Open(existing, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o644)
		case "nospc":
			f.Op = "WRITE"
			_, err = unix.Pwrite(fd, make([]byte, 4096), 0)
		case "stale":
			f.Op = "READ"
			_, err = unix.Pread(fd, make([]byte, 4096), 0)
		default:
			return fmt.Errorf("iofail: no kind %q (missing, create, exists, nospc, stale)", kind)
		}
		var e unix.Errno
		if !errors.As(err, &e) {
			return fmt.Errorf("iofail %s %s #%d: want a failure, got %v", kind, mount, i, err)
		}
		if want == 0 {
			want = e
		}
		if e != want {
			return fmt.Errorf("iofail %s %s #%d: %v after %v", kind, mount, i, e, want)
		}
		f.Count++
	}
	f.Errno = unix.ErrnoName(want)
	line, err := json.Marshal(f)
	if err != nil {
		return err
	}
	w, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := w.Write(append(line, '\n')); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}
