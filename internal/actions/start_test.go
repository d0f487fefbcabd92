package actions

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// TestStartIsPrivate: what a program started by Start creates is for root only,
// and aod's own umask is left as it was.
func TestStartIsPrivate(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("/bin/sh", "-c", "echo x > file && mkdir sub")
	cmd.Dir = dir
	before := syscall.Umask(0o022)
	defer syscall.Umask(before)
	if err := Start(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]fs.FileMode{"file": 0o600, "sub": fs.ModeDir | 0o700} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v", name, st.Mode(), want)
		}
	}
	if now := syscall.Umask(0o022); now != 0o022 {
		t.Errorf("aod's umask left at %#o", now)
	}
}
