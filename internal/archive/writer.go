package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// DefaultLevel is the zstd level bundles are compressed with unless configured.
const DefaultLevel = 3

// memberMode is the permission of every bundle and of every member inside it.
const memberMode = 0o600

// Writer streams one bundle: tar members go through a zstd encoder straight to the
// temporary file, so memory stays bounded by the encoder's window whatever the
// bundle's size.
type Writer struct {
	dir         *Dir
	f           *os.File
	final, temp string
	zw          *zstd.Encoder
	tw          *tar.Writer
	mtime       time.Time
	closed      bool
}

// Create starts the bundle final (a name from BundleName) under its temporary name,
// compressed at zstd level (1..22; 0 means DefaultLevel). The temporary is created
// exclusively, never through a symlink, with mode 0600, and stays locked until Commit
// or Abort, which is how retention tells it from one a killed process left behind.
func (d *Dir) Create(final string, level int) (*Writer, error) {
	if _, ok := ParseBundleName(final); !ok {
		return nil, fmt.Errorf("archive: %q is not a bundle name", final)
	}
	if level == 0 {
		level = DefaultLevel
	}
	if level < 1 || level > 22 {
		return nil, fmt.Errorf("archive: zstd level %d out of range 1..22", level)
	}
	temp := tempName(final)
	fd, err := unix.Openat(d.fd(), temp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, memberMode)
	if err != nil {
		return nil, fmt.Errorf("archive: create %s: %w", filepath.Join(d.Path(), temp), err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		_ = unix.Unlinkat(d.fd(), temp, 0)
		return nil, fmt.Errorf("archive: lock %s: %w", temp, err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(d.Path(), temp))
	// One encoder goroutine per bundle: concurrency comes from several bundles, and a
	// single-threaded encoder keeps each bundle's memory to one window.
	zw, err := zstd.NewWriter(f,
		zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderConcurrency(1),
		zstd.WithLowerEncoderMem(true))
	if err != nil {
		f.Close()
		_ = unix.Unlinkat(d.fd(), temp, 0)
		return nil, fmt.Errorf("archive: zstd encoder: %w", err)
	}
	return &Writer{dir: d, f: f, final: final, temp: temp, zw: zw, tw: tar.NewWriter(zw), mtime: time.Now()}, nil
}

// Add appends a member of exactly size bytes read from r. A reader that ends early is
// an error, because tar cannot shrink a member whose size is already written.
func (w *Writer) Add(name string, size int64, r io.Reader) error {
	if w.closed {
		return errors.New("archive: bundle already closed")
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: memberMode, ModTime: w.mtime}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("archive: %s: %w", name, err)
	}
	n, err := io.CopyN(w.tw, r, size)
	if err != nil {
		return fmt.Errorf("archive: %s: wrote %d of %d bytes: %w", name, n, size, err)
	}
	return nil
}

// AddFile appends the whole content of f (from its start) as member name.
func (w *Writer) AddFile(name string, f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("archive: %s: %w", name, err)
	}
	return w.Add(name, st.Size(), io.NewSectionReader(f, 0, st.Size()))
}

// AddBytes appends b as member name.
func (w *Writer) AddBytes(name string, b []byte) error {
	return w.Add(name, int64(len(b)), bytes.NewReader(b))
}

// Commit finishes the bundle: it closes the tar stream and the zstd frame, fsyncs the
// file, renames it to its final name and fsyncs the directory, so after a crash the
// bundle either exists complete or not at all. It returns the final path and size.
func (w *Writer) Commit() (string, int64, error) {
	if w.closed {
		return "", 0, errors.New("archive: bundle already closed")
	}
	w.closed = true
	err := w.tw.Close()
	if cerr := w.zw.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = w.f.Sync()
	}
	var size int64
	if err == nil {
		var st os.FileInfo
		if st, err = w.f.Stat(); err == nil {
			size = st.Size()
		}
	}
	if err == nil {
		err = renameNoReplace(w.dir.fd(), w.temp, w.final) // never replace a bundle
	}
	// Closing releases the lock; by now the temporary is either renamed or about
	// to be removed.
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = unix.Unlinkat(w.dir.fd(), w.temp, 0)
		return "", 0, fmt.Errorf("archive: commit %s: %w", w.final, err)
	}
	if err := w.dir.f.Sync(); err != nil {
		return "", 0, fmt.Errorf("archive: sync %s: %w", w.dir.Path(), err)
	}
	return filepath.Join(w.dir.Path(), w.final), size, nil
}

// Abort discards the bundle and its temporary. It is a no-op after Commit.
func (w *Writer) Abort() {
	if w.closed {
		return
	}
	w.closed = true
	w.zw.Reset(io.Discard)
	w.f.Close()
	_ = unix.Unlinkat(w.dir.fd(), w.temp, 0)
}

// TempPath is where the bundle is being written until Commit.
func (w *Writer) TempPath() string { return filepath.Join(w.dir.Path(), w.temp) }
