package archive

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linuxdiag/aod/internal/archive/archivetest"
)

func TestBundleNameRoundTrip(t *testing.T) {
	at := time.Unix(1700000000, 123456789)
	name := BundleName(at, "smb", "latency")
	if name != "aod_quick_1700000000123456789_smb_latency.tar.zst" {
		t.Fatalf("name = %q", name)
	}
	b, ok := ParseBundleName(name)
	if !ok || !b.Time.Equal(at) || b.Protocol != "smb" || b.Type != "latency" {
		t.Fatalf("parse = %+v, %v", b, ok)
	}
	// The snapshot's name keeps AODv2's spelling.
	if got := BundleName(at, "aod", "snapshot"); got != "aod_quick_1700000000123456789_aod_snapshot.tar.zst" {
		t.Fatalf("snapshot name = %q", got)
	}
}

func TestBundleNameSanitizes(t *testing.T) {
	name := BundleName(time.Unix(0, 5), "../e_vil", "a/b c")
	if strings.ContainsAny(name, "/ ") {
		t.Fatalf("unsafe name %q", name)
	}
	b, ok := ParseBundleName(name)
	if !ok || b.Protocol != "---e-vil" || b.Type != "a-b-c" {
		t.Fatalf("parse(%q) = %+v, %v", name, b, ok)
	}
}

func TestParseBundleNameRejects(t *testing.T) {
	for _, name := range []string{
		"aod_quick_1_smb_latency.tar.gz",
		"aod_quick_x_smb_latency.tar.zst",
		"aod_quick__smb_latency.tar.zst",
		"aod_quick_1_smb.tar.zst",
		"aod_quick_1_SMB_latency.tar.zst",
		"aod_quick_-1_smb_latency.tar.zst",
		"aod_quick_99999999999999999999_smb_latency.tar.zst",
		".aod_quick_1_smb_latency.tar.zst.tmp",
		"notes.txt",
	} {
		if _, ok := ParseBundleName(name); ok {
			t.Errorf("ParseBundleName(%q) accepted", name)
		}
	}
}

func TestIsTempName(t *testing.T) {
	for name, want := range map[string]bool{
		".aod_quick_1_smb_latency.tar.zst.tmp": true,
		".aod_spool_abc.tmp":                   true,
		"aod_quick_1_smb_latency.tar.zst":      false,
		".aod_quick_x_smb_latency.tar.zst.tmp": false,
		".bashrc.tmp":                          false,
		"foo.tmp":                              false,
	} {
		if got := IsTempName(name); got != want {
			t.Errorf("IsTempName(%q) = %v, want %v", name, got, want)
		}
	}
}

func FuzzParseBundleName(f *testing.F) {
	f.Add("aod_quick_1700000000123456789_smb_latency.tar.zst")
	f.Add("aod_quick_1_aod_snapshot.tar.zst")
	f.Add(".aod_quick_1_smb_error.tar.zst.tmp")
	f.Fuzz(func(t *testing.T, name string) {
		b, ok := ParseBundleName(name)
		if !ok {
			return
		}
		if strings.ContainsAny(b.Protocol, "_/") || strings.Contains(b.Type, "/") || b.Protocol == "" || b.Type == "" {
			t.Fatalf("parsed unsafe fields from %q: %+v", name, b)
		}
		// What parses must be what BundleName makes from the parsed fields, up to
		// leading zeros in the timestamp.
		again, ok := ParseBundleName(BundleName(b.Time, b.Protocol, b.Type))
		if !ok || again != b {
			t.Fatalf("round trip of %q: %+v, %v", name, again, ok)
		}
		_ = IsTempName(name)
	})
}

func TestOpenDirCreatesPrivateDirs(t *testing.T) {
	out := filepath.Join(t.TempDir(), "aod")
	d, err := OpenDir(out)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, p := range []string{out, filepath.Join(out, BatchesDir)} {
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if !st.IsDir() || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, want a 0700 directory", p, st.Mode())
		}
	}
	if d.Path() != filepath.Join(out, BatchesDir) {
		t.Errorf("Path = %q", d.Path())
	}
}

func TestOpenDirTightensMode(t *testing.T) {
	out := t.TempDir()
	if err := os.Mkdir(filepath.Join(out, BatchesDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(out)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	for _, p := range []string{out, filepath.Join(out, BatchesDir)} {
		if st, _ := os.Stat(p); st.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, want 0700", p, st.Mode().Perm())
		}
	}
}

func TestOpenDirRefusesSymlinks(t *testing.T) {
	elsewhere := t.TempDir()
	root := t.TempDir()

	// The output directory itself is a symlink.
	link := filepath.Join(root, "out")
	if err := os.Symlink(elsewhere, link); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(link); err == nil {
		t.Fatal("OpenDir followed a symlinked output directory")
	}

	// batches is a symlink planted inside a real output directory.
	out := filepath.Join(root, "real")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, filepath.Join(out, BatchesDir)); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(out); err == nil {
		t.Fatal("OpenDir followed a symlinked batches directory")
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Fatalf("something was written through the symlink: %v", entries)
	}
}

func TestWriterCommit(t *testing.T) {
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	name := BundleName(time.Now(), "smb", "error")
	w, err := d.Create(name, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d.Path(), name)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("final name exists before Commit")
	}
	if err := w.AddBytes("b/hello.txt", []byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	spool, err := d.Spool()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spool.WriteString("spooled"); err != nil {
		t.Fatal(err)
	}
	if err := w.AddFile("b/spool.txt", spool); err != nil {
		t.Fatal(err)
	}
	spool.Close()
	path, size, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != size || st.Mode().Perm() != 0o600 {
		t.Errorf("bundle size %d (reported %d), mode %v", st.Size(), size, st.Mode())
	}
	top, files, err := archivetest.Members(path)
	if err != nil {
		t.Fatal(err)
	}
	if top != "b" || string(files["hello.txt"]) != "hello\n" || string(files["spool.txt"]) != "spooled" {
		t.Errorf("members under %q = %q", top, files)
	}
	entries, _ := d.List()
	if len(entries) != 1 || entries[0].Name != name {
		t.Errorf("directory holds %+v, want only the bundle (no temporary, no spool)", entries)
	}
}

func TestShortMemberFailsTheBundle(t *testing.T) {
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	w, err := d.Create(BundleName(time.Now(), "smb", "error"), 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add("short", 10, strings.NewReader("abc")); err == nil {
		t.Fatal("a short member was accepted")
	}
	if _, _, err := w.Commit(); err == nil {
		t.Fatal("Commit made a bundle with a short member")
	}
	if entries, _ := d.List(); len(entries) != 0 {
		t.Errorf("left behind %+v", entries)
	}
}

func TestWriterAbort(t *testing.T) {
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	w, err := d.Create(BundleName(time.Now(), "smb", "error"), 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddBytes("x", []byte("x")); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if entries, _ := d.List(); len(entries) != 0 {
		t.Errorf("left behind %+v", entries)
	}
	if _, _, err := w.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
}

func TestCreateRejects(t *testing.T) {
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Create("../escape.tar.zst", 3); err == nil {
		t.Error("accepted a name that is not a bundle name")
	}
	if _, err := d.Create(BundleName(time.Now(), "smb", "error"), 23); err == nil {
		t.Error("accepted zstd level 23")
	}
}

func TestSystemTarExtracts(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("tar not installed")
	}
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	w, err := d.Create(BundleName(time.Now(), "smb", "latency"), 19)
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	if err := w.AddBytes("top/data.bin", payload); err != nil {
		t.Fatal(err)
	}
	path, _, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if out, err := exec.Command("tar", "--zstd", "-xf", path, "-C", dst).CombinedOutput(); err != nil {
		t.Fatalf("tar --zstd -xf: %v: %s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dst, "top", "data.bin"))
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("extracted %d bytes (err %v), want %d", len(got), err, len(payload))
	}
}

func TestRemoveStaleTemp(t *testing.T) {
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	w, err := d.Create(BundleName(time.Now(), "smb", "error"), 3)
	if err != nil {
		t.Fatal(err)
	}
	temp := filepath.Base(w.TempPath())
	future := time.Now().Add(time.Hour)

	// Locked by its live writer: never removed, however old.
	if _, err := d.RemoveStaleTemp(temp, future); !errors.Is(err, ErrInUse) {
		t.Fatalf("live temporary: err = %v, want ErrInUse", err)
	}
	// An unlocked file younger than the cutoff is left alone too.
	orphan := ".aod_quick_5_smb_error.tar.zst.tmp"
	if err := os.WriteFile(filepath.Join(d.Path(), orphan), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.RemoveStaleTemp(orphan, time.Now().Add(-time.Hour)); !errors.Is(err, ErrInUse) {
		t.Fatalf("young orphan: err = %v, want ErrInUse", err)
	}
	// Unlocked and old: removed.
	size, err := d.RemoveStaleTemp(orphan, future)
	if err != nil || size != int64(len("partial")) {
		t.Fatalf("old orphan: size %d, err %v", size, err)
	}
	if _, err := os.Lstat(filepath.Join(d.Path(), orphan)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("orphan still there")
	}
	// Not aod's: refused.
	if _, err := d.RemoveStaleTemp("notes.txt", future); err == nil {
		t.Fatal("removed a file that is not an aod temporary")
	}
	w.Abort()
}

func TestRemoveRefusesNonRegular(t *testing.T) {
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	target := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := BundleName(time.Unix(1, 0), "smb", "error")
	if err := os.Symlink(target, filepath.Join(d.Path(), link)); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(link); err == nil {
		t.Fatal("Remove removed a symlink")
	}
	entries, err := d.List()
	if err != nil || len(entries) != 1 || entries[0].Mode&os.ModeSymlink == 0 {
		t.Fatalf("List = %+v, %v; want the symlink, seen as one", entries, err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Fatal("symlink target changed")
	}
}
