package bpf_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/bpf/internal/testprog"
	"github.com/linuxdiag/aod/internal/event"
	fileio "github.com/linuxdiag/aod/internal/io"
	"github.com/linuxdiag/aod/internal/proto"
)

const tmpfsMagic = 0x01021994

// ioProbe loads and attaches the io probe with the scope of one fresh tmpfs mount,
// and returns it with the mount's directory and id.
func ioProbe(t testing.TB) (*bpf.Probes, *bpf.IOProbes, string, uint32) {
	t.Helper()
	testprog.Require(t)
	p, err := bpf.Load(bpf.Options{})
	testprog.CheckLoad(t, err)
	t.Cleanup(func() { p.Close() })
	io, err := p.LoadIO()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { io.Close() })

	dir := t.TempDir()
	if err := unix.Mount("aodio", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, 0, unix.STATX_MNT_ID, &stx); err != nil || stx.Mask&unix.STATX_MNT_ID == 0 {
		t.Skipf("no mount id from statx: %v", err)
	}
	mnt := uint32(stx.Mnt_id)
	// Only this mount is in scope: the tmpfs magic is not, so /dev/shm and /run, where
	// other processes fail too, stay out.
	if err := io.SetScope(bpf.IOScope{Mounts: []bpf.IOMount{{Point: dir, ID: mnt, Magic: tmpfsMagic}}}); err != nil {
		t.Fatal(err)
	}
	if err := io.Attach(); err != nil {
		t.Fatal(err)
	}
	return p, io, dir, mnt
}

// ioCounts returns the probe's counts of mount mnt by (operation, errno).
func ioCounts(t testing.TB, io *bpf.IOProbes, mnt uint32) map[[2]uint16]uint64 {
	t.Helper()
	samples, err := io.Errors(nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[[2]uint16]uint64{}
	for _, s := range samples {
		if s.MountID == mnt {
			if s.Magic != tmpfsMagic {
				t.Errorf("mount %d counted with magic %#x, want tmpfs's", mnt, s.Magic)
			}
			got[[2]uint16{s.Op, s.Errno}] += s.Count
		}
	}
	return got
}

// TestIOCountsRealFailures drives failing system calls of every kind of argument the
// probe reads (absolute path, path relative to a directory descriptor and to the
// working directory, descriptor, flag-selected operation) against a tmpfs mount, and
// checks the kernel's counts are exactly the failures made, by operation and errno,
// and that successes and failures elsewhere are not counted.
func TestIOCountsRealFailures(t *testing.T) {
	_, io, dir, mnt := ioProbe(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o600))
	must(os.Mkdir(filepath.Join(dir, "d"), 0o700))
	must(os.WriteFile(filepath.Join(dir, "d", "g"), nil, 0o600))
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(err)
	defer unix.Close(dfd)

	want := map[[2]uint16]uint64{}
	fail := func(op uint16, e unix.Errno, n int, call func() error) {
		t.Helper()
		for range n {
			if err := call(); !errors.Is(err, e) {
				t.Fatalf("%s: got %v, want %v", fileio.Command(op), err, e)
			}
		}
		want[[2]uint16{op, uint16(e)}] += uint64(n)
	}
	missing := filepath.Join(dir, "missing")
	fail(fileio.Open, unix.ENOENT, 7, func() error { _, err := unix.Open(missing, unix.O_RDONLY, 0); return err })
	fail(fileio.Open, unix.ENOENT, 2, func() error { _, err := unix.Openat(dfd, "missing", unix.O_RDONLY, 0); return err })
	fail(fileio.Stat, unix.ENOENT, 3, func() error { var st unix.Stat_t; return unix.Stat(missing, &st) })
	fail(fileio.Create, unix.EEXIST, 2, func() error {
		_, err := unix.Open(filepath.Join(dir, "f"), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o600)
		return err
	})
	fail(fileio.Mkdir, unix.EEXIST, 1, func() error { return unix.Mkdirat(dfd, "d", 0o700) })
	// The mount point itself, absolute: matched as the mount's root.
	fail(fileio.Mkdir, unix.EEXIST, 2, func() error { return unix.Mkdir(dir, 0o700) })
	fail(fileio.Rmdir, unix.ENOTEMPTY, 1, func() error { return unix.Unlinkat(dfd, "d", unix.AT_REMOVEDIR) })
	fail(fileio.Unlink, unix.ENOENT, 1, func() error { return unix.Unlinkat(dfd, "missing", 0) })
	fail(fileio.Readlink, unix.EINVAL, 1, func() error { _, err := unix.Readlink(filepath.Join(dir, "f"), make([]byte, 8)); return err })
	fail(fileio.Read, unix.EISDIR, 4, func() error { _, err := unix.Read(dfd, make([]byte, 8)); return err })
	fail(fileio.Write, unix.EBADF, 1, func() error { _, err := unix.Write(dfd, []byte("x")); return err })
	// Two open file descriptions of one file: an OFD lock of one conflicts with the other's.
	f1, err := unix.Open(filepath.Join(dir, "f"), unix.O_RDWR, 0)
	must(err)
	defer unix.Close(f1)
	f2, err := unix.Open(filepath.Join(dir, "f"), unix.O_RDWR, 0)
	must(err)
	defer unix.Close(f2)
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 1}
	must(unix.FcntlFlock(uintptr(f1), unix.F_OFD_SETLK, &lk))
	fail(fileio.LockFcntl, unix.EAGAIN, 2, func() error { return unix.FcntlFlock(uintptr(f2), unix.F_OFD_SETLK, &lk) })
	// A failing fcntl that is not a lock command is no LOCK_FCNTL.
	if _, err := unix.FcntlInt(uintptr(f1), unix.F_SETPIPE_SZ, 4096); err == nil {
		t.Fatal("F_SETPIPE_SZ on a regular file succeeded")
	}
	// Relative to the working directory.
	wd, err := os.Getwd()
	must(err)
	must(os.Chdir(dir))
	fail(fileio.Stat, unix.ENOENT, 2, func() error { var st unix.Stat_t; return unix.Lstat("missing", &st) })
	must(os.Chdir(wd))
	// Not in scope: another file system's missing path; successes.
	for range 5 {
		var st unix.Stat_t
		if unix.Stat("/nonexistent-aod-io-test", &st) == nil {
			t.Fatal("a missing path exists")
		}
		must(unix.Stat(filepath.Join(dir, "f"), &st))
	}

	got := ioCounts(t, io, mnt)
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s %s: counted %d, made %d", fileio.Command(k[0]), fileio.Status(uint32(k[1])), got[k], n)
		}
	}
	for k, n := range got {
		if want[k] == 0 {
			t.Errorf("%s %s: counted %d, made none", fileio.Command(k[0]), fileio.Status(uint32(k[1])), n)
		}
	}
}

// TestIOTrackedFailuresReachTheRing: only the (operation, errno) pairs of the filter
// become records, with the process, the mount, the errno and the path.
func TestIOTrackedFailuresReachTheRing(t *testing.T) {
	p, io, dir, mnt := ioProbe(t)
	if err := io.SetErrorFilter(bpf.IOErrorFilter{Pairs: []bpf.IOPair{{Op: int(fileio.Open), Errno: int32(unix.ENOENT)}}}); err != nil {
		t.Fatal(err)
	}
	r, err := p.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	missing := filepath.Join(dir, "missing")
	for range 3 {
		if _, err := unix.Open(missing, unix.O_RDONLY, 0); err != unix.ENOENT {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Stat(missing, &st); err != unix.ENOENT { // counted, not tracked
			t.Fatal(err)
		}
	}
	var records []event.Event
	r.SetDeadline(time.Now().Add(2 * time.Second))
	for {
		rec, err := r.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil && !errors.Is(err, ringbuf.ErrFlushed) {
			t.Fatal(err)
		}
		var ev event.Event
		if err := bpf.DecodeEvent(rec.RawSample, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Protocol == proto.IO && ev.SessionID == uint64(mnt) {
			records = append(records, ev)
		}
		if len(records) == 3 {
			r.SetDeadline(time.Now()) // drain whatever else came, then stop
		}
	}
	if len(records) != 3 {
		t.Fatalf("%d records of the mount, want the 3 failed opens: %+v", len(records), records)
	}
	for _, ev := range records {
		server := string(ev.Server[:len(missing)])
		if ev.Kind != event.KindError || ev.Command != fileio.Open || ev.Status != uint32(unix.ENOENT) || ev.Rc != -int32(unix.ENOENT) ||
			ev.Tgid != uint32(os.Getpid()) || ev.CgroupID == 0 || ev.ConnID != 0 || ev.TreeID != tmpfsMagic || server != missing || ev.MessageID != unix.SYS_OPEN && ev.MessageID != unix.SYS_OPENAT {
			t.Errorf("record %+v (path %q)", ev, server)
		}
	}
	if got := ioCounts(t, io, mnt)[[2]uint16{fileio.Stat, uint16(unix.ENOENT)}]; got != 3 {
		t.Errorf("untracked STAT ENOENT counted %d, want 3", got)
	}
}
