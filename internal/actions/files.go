package actions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// openSource opens a file to collect without following a symlink in its last
// component (a planted link must not pull /etc/shadow into a bundle) and without
// blocking on a FIFO. A missing file is a skip saying missing, or an error when
// missing is empty.
func openSource(path, missing string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) && missing != "" {
		return nil, Skip("%s", missing)
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// ctxReader stops a copy once its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// File returns an action that copies path into member file. Files under /proc and
// /sys report a size of 0, so it reads to end of file rather than trusting the size.
// missing is the skip reason when path does not exist.
func File(name, file, path, missing string) Action {
	return Action{Name: name, Run: func(ctx context.Context, _ *Env, out *Output, r *Result) error {
		r.Source = path
		f, err := openSource(path, missing)
		if err != nil {
			return err
		}
		defer f.Close()
		w, err := out.Create(file)
		if err != nil {
			return err
		}
		return copyFrom(ctx, w, f, path)
	}}
}

// copyFrom copies f, opened from path, to w until its end or ctx's.
func copyFrom(ctx context.Context, w io.Writer, f *os.File, path string) error {
	if _, err := io.Copy(w, ctxReader{ctx, f}); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// Params returns an action that writes "name = value" for every file in dir (a
// module's parameters directory), in name order.
func Params(name, file, dir, missing string) Action {
	return Action{Name: name, Run: func(ctx context.Context, _ *Env, out *Output, r *Result) error {
		r.Source = dir
		entries, err := readDirOrSkip(dir, missing)
		if err != nil {
			return err
		}
		w, err := out.Create(file)
		if err != nil {
			return err
		}
		var failed []error
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !e.Type().IsRegular() {
				continue
			}
			value, err := readSmall(filepath.Join(dir, e.Name()))
			if err != nil {
				failed = append(failed, err)
				value = "<" + err.Error() + ">"
			}
			if _, err := fmt.Fprintf(w, "%s = %s\n", e.Name(), value); err != nil {
				return err
			}
		}
		return errors.Join(failed...)
	}}
}

// readDirOrSkip lists dir; a missing dir is a skip saying missing.
func readDirOrSkip(dir, missing string) ([]fs.DirEntry, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Skip("%s", missing)
	}
	return entries, err
}

// readSmall reads a one-value sysfs file.
func readSmall(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return string(bytes.TrimSpace(b)), nil
}
