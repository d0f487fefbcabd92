package packaging_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// The tests build the packages once with `make package` (as a user would) and read
// them with the distributions' own tools: dpkg-deb, rpm, lintian, dpkg.

const root = ".." // the repository, from this package's directory

// pkgs are the packages `make package` wrote, and an upgrade .deb of the same tree
// with a higher version.
type pkgs struct {
	version    string // packaging/version.sh's output
	deb        string
	rpm        string
	upgrade    string // a .deb versioned version+"+1"
	upgradeRPM string // the .rpm of the same
	err        error
}

var (
	built     pkgs
	buildOnce sync.Once
)

// build runs `make package` twice: first with a higher version, whose .deb is kept
// aside for the upgrade test, then as is.
func build(t *testing.T) pkgs {
	t.Helper()
	for _, tool := range []string{"make", "dpkg-deb", "dpkg", "rpm", "lintian", "help2man", "systemd-analyze"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run make setup", tool)
		}
	}
	buildOnce.Do(func() { built = makePackages() })
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built
}

func makePackages() pkgs {
	var p pkgs
	v, err := exec.Command(filepath.Join(root, "packaging/version.sh")).Output()
	if err != nil {
		p.err = fmt.Errorf("version.sh: %w", err)
		return p
	}
	p.version = strings.TrimSpace(string(v))
	aside, err := os.MkdirTemp("", "aod-upgrade-")
	if err != nil {
		p.err = err
		return p
	}
	// The directory is removed by TestMain.
	upgradeDir = aside
	if p.upgrade, p.upgradeRPM, p.err = makePackage("PKG_VERSION=" + p.version + "+1"); p.err != nil {
		return p
	}
	for _, f := range []*string{&p.upgrade, &p.upgradeRPM} {
		moved := filepath.Join(aside, filepath.Base(*f))
		if p.err = os.Rename(*f, moved); p.err != nil {
			return p
		}
		*f = moved
	}
	p.deb, p.rpm, p.err = makePackage()
	return p
}

var upgradeDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if upgradeDir != "" {
		os.RemoveAll(upgradeDir)
	}
	os.Exit(code)
}

// makePackage runs make package with args and returns the .deb and .rpm it wrote.
func makePackage(args ...string) (deb, rpm string, err error) {
	cmd := exec.Command("make", append([]string{"-C", root, "package"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("make package %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	dist, err := filepath.Abs(filepath.Join(root, "dist"))
	if err != nil {
		return "", "", err
	}
	debs, _ := filepath.Glob(filepath.Join(dist, "*.deb"))
	rpms, _ := filepath.Glob(filepath.Join(dist, "*.rpm"))
	if len(debs) != 1 || len(rpms) != 1 {
		return "", "", fmt.Errorf("make package left %v and %v in dist/, want one .deb and one .rpm", debs, rpms)
	}
	return debs[0], rpms[0], nil
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// wantFiles are the packaged files (deb paths; the rpm puts the unit under /usr/lib and
// has no changelog or lintian overrides) and their modes.
var wantFiles = map[string]string{
	"/usr/bin/aod":                           "-rwxr-xr-x",
	"/lib/systemd/system/aod.service":        "-rw-r--r--",
	"/etc/aod/aod.yaml":                      "-rw-r--r--",
	"/usr/share/man/man1/aod.1.gz":           "-rw-r--r--",
	"/usr/share/doc/aod/README.md":           "-rw-r--r--",
	"/usr/share/doc/aod/copyright":           "-rw-r--r--",
	"/usr/share/doc/aod/changelog.Debian.gz": "-rw-r--r--",
	"/usr/share/lintian/overrides/aod":       "-rw-r--r--",
}

// docs are the docs/*.md files, each of which the packages carry.
func docs(t *testing.T) []string {
	mds, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil || len(mds) == 0 {
		t.Fatalf("no docs/*.md (%v)", err)
	}
	var out []string
	for _, md := range mds {
		out = append(out, "/usr/share/doc/aod/docs/"+filepath.Base(md))
	}
	return out
}

func TestDebHoldsTheFilesAndMetadata(t *testing.T) {
	p := build(t)
	listing := run(t, "dpkg-deb", "-c", p.deb)
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(listing), "\n") {
		f := strings.Fields(line)
		got[strings.TrimPrefix(f[len(f)-1], ".")] = f[0]
	}
	want := maps.Clone(wantFiles)
	for _, d := range docs(t) {
		want[d] = "-rw-r--r--"
	}
	for path, mode := range want {
		if got[path] != mode {
			t.Errorf("deb: %s has mode %q, want %q\n%s", path, got[path], mode, listing)
		}
	}
	for path, mode := range got {
		if !strings.HasPrefix(mode, "d") && want[path] == "" {
			t.Errorf("deb: unexpected file %s", path)
		}
	}

	info := run(t, "dpkg-deb", "-I", p.deb)
	for _, field := range []string{
		"Package: aod\n",
		"Version: " + p.version + "-1\n",
		"Section: admin\n",
		"Homepage: https://github.com/linuxdiag/aod\n",
		"Recommends: tcpdump, trace-cmd, cifs-utils, nfs-common, iproute2\n",
		"Description: always-on diagnostics for the Linux SMB and NFS clients\n",
	} {
		if !strings.Contains(info, " "+field) {
			t.Errorf("deb control lacks %q:\n%s", field, info)
		}
	}
	if !regexp.MustCompile(`(?m)^ Maintainer: .+ <.+@.+>$`).MatchString(info) {
		t.Errorf("deb control has no maintainer with an address:\n%s", info)
	}
	if strings.Contains(info, "Depends:") {
		t.Errorf("deb depends on something; the binary is static and needs nothing:\n%s", info)
	}
	if conf := run(t, "dpkg-deb", "-f", p.deb, "Version"); strings.TrimSpace(conf) != p.version+"-1" {
		t.Errorf("version %q", conf)
	}
	ctl := t.TempDir()
	run(t, "dpkg-deb", "-e", p.deb, ctl)
	if b, _ := os.ReadFile(filepath.Join(ctl, "conffiles")); string(b) != "/etc/aod/aod.yaml\n" {
		t.Errorf("conffiles = %q, want only /etc/aod/aod.yaml", b)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		want, _ := os.ReadFile(filepath.Join(root, "packaging/deb", s))
		if got, err := os.ReadFile(filepath.Join(ctl, s)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("deb %s is not packaging/deb/%s (%v)", s, s, err)
		}
	}
}

// TestPackagedBinaryIsMakeBuilds checks both packages carry the very binary make build
// wrote, with the package's version in its --help derived man page.
func TestPackagedBinaryIsMakeBuilds(t *testing.T) {
	p := build(t)
	want := sum(t, filepath.Join(root, "bin/aod"))
	x := t.TempDir()
	run(t, "dpkg-deb", "-x", p.deb, x)
	if got := sum(t, filepath.Join(x, "usr/bin/aod")); got != want {
		t.Errorf("deb's /usr/bin/aod differs from bin/aod")
	}
	rx := t.TempDir()
	cmd := exec.Command("sh", "-c", "rpm2cpio \"$1\" | cpio -idm --quiet", "sh", p.rpm)
	cmd.Dir = rx
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rpm2cpio: %v\n%s", err, out)
	}
	if got := sum(t, filepath.Join(rx, "usr/bin/aod")); got != want {
		t.Errorf("rpm's /usr/bin/aod differs from bin/aod")
	}
	man := run(t, "sh", "-c", "zcat \"$1\"", "sh", filepath.Join(x, "usr/share/man/man1/aod.1.gz"))
	for _, s := range []string{`.TH AOD "1"`, "aod " + p.version, "config validate FILE"} {
		if !strings.Contains(man, s) {
			t.Errorf("man page lacks %q:\n%s", s, man)
		}
	}
	unit, _ := os.ReadFile(filepath.Join(x, "lib/systemd/system/aod.service"))
	if !bytes.Contains(unit, []byte("\nExecStart=/usr/bin/aod run ")) {
		t.Errorf("the packaged unit does not run /usr/bin/aod:\n%s", unit)
	}
}

func TestRPMHoldsTheFilesAndMetadata(t *testing.T) {
	p := build(t)
	// Flags (c: config, n: noreplace), mode and name of each file.
	listing := run(t, "rpm", "-qp", "--qf", `[%{FILEFLAGS:fflags} %{FILEMODES:perms} %{FILENAMES}\n]`, p.rpm)
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimRight(listing, "\n"), "\n") {
		f := strings.Fields(line)
		got[f[len(f)-1]] = strings.Join(f[:len(f)-1], " ")
	}
	want := map[string]string{
		"/usr/bin/aod":                        "-rwxr-xr-x",
		"/usr/lib/systemd/system/aod.service": "-rw-r--r--",
		"/etc/aod/aod.yaml":                   "cn -rw-r--r--",
		"/etc/aod":                            "drwxr-xr-x",
		"/usr/share/man/man1/aod.1.gz":        "-rw-r--r--",
		"/usr/share/doc/aod/README.md":        "-rw-r--r--",
		"/usr/share/doc/aod/copyright":        "-rw-r--r--",
	}
	for _, d := range docs(t) {
		want[d] = "-rw-r--r--"
	}
	if !maps.Equal(got, want) {
		t.Errorf("rpm files:\n%s\nwant %v", listing, want)
	}

	info := run(t, "rpm", "-qp", "--qf", "%{NAME} %{VERSION}-%{RELEASE} %{LICENSE} %{URL}\n%{SUMMARY}\n", p.rpm)
	if want := "aod " + p.version + "-1 LicenseRef-not-yet-licensed https://github.com/linuxdiag/aod\n" +
		"always-on diagnostics for the Linux SMB and NFS clients\n"; info != want {
		t.Errorf("rpm -qp: %q, want %q", info, want)
	}
	if rec := run(t, "rpm", "-qp", "--recommends", p.rpm); rec != "tcpdump\ntrace-cmd\ncifs-utils\nnfs-utils\niproute\n" {
		t.Errorf("rpm recommends %q", rec)
	}
	scripts := run(t, "rpm", "-qp", "--scripts", p.rpm)
	for _, s := range []string{"post", "preun", "postun"} {
		body, _ := os.ReadFile(filepath.Join(root, "packaging/rpm", s))
		if !strings.Contains(scripts, string(body)) {
			t.Errorf("rpm scriptlets lack packaging/rpm/%s:\n%s", s, scripts)
		}
	}
}

// TestLintian fails on any tag lintian reports, at every level: those aod accepts are
// overridden, each with its reason, in packaging/deb/lintian-overrides (which must
// have no stale entries either: lintian reports an unused override).
func TestLintian(t *testing.T) {
	p := build(t)
	out, err := exec.Command("lintian", "--pedantic", "--display-info", "--fail-on", "error,warning,info,pedantic", p.deb).CombinedOutput()
	var tags []string
	for _, line := range strings.Split(string(out), "\n") {
		if len(line) > 2 && line[1] == ':' && strings.Contains("EWIPX", line[:1]) {
			tags = append(tags, line)
		}
	}
	if err != nil || len(tags) > 0 {
		t.Errorf("lintian (%v):\n%s", err, out)
	}
}

// TestDebLifecycle installs, upgrades, removes and purges the .deb for real with dpkg,
// in a throwaway root: an overlay of this machine's root in a private mount namespace,
// so that dpkg, its database and the maintainer scripts are the machine's own and
// nothing they write outlives the test. No systemd runs there (as in a container or
// an image build), so the scripts enable and disable but start nothing.
func TestDebLifecycle(t *testing.T) {
	p := build(t)
	if os.Geteuid() != 0 {
		t.Fatal("needs root (dpkg into an overlay of /)")
	}
	r := throwawayRoot(t)
	copyIn(t, r, p.deb, p.upgrade)
	in := func(args ...string) string {
		t.Helper()
		return run(t, "chroot", append([]string{r}, args...)...)
	}
	exists := func(path string) bool {
		_, err := os.Lstat(filepath.Join(r, path))
		return err == nil
	}
	const wants = "/etc/systemd/system/multi-user.target.wants/aod.service"

	in("dpkg", "-i", "/tmp/"+filepath.Base(p.deb))
	for path := range wantFiles {
		if !exists(path) {
			t.Errorf("installed: %s missing", path)
		}
	}
	if !exists(wants) {
		t.Errorf("installed: the service is not enabled (%s)", wants)
	}
	if v := in("aod", "version"); !strings.HasPrefix(v, "aod ") {
		t.Errorf("aod version: %q", v)
	}
	// The unit as installed, against the systemd of this machine: the binary it names
	// exists and every directive parses.
	in("systemd-analyze", "verify", "/lib/systemd/system/aod.service")
	// Its exposure score, recorded in docs/packaging.md: a change to the hardening
	// that raises it updates both, with the reason.
	sec := in("systemd-analyze", "security", "--offline=true", "--no-pager", "/lib/systemd/system/aod.service")
	if m := regexp.MustCompile(`Overall exposure level for aod.service: ([0-9.]+)`).FindStringSubmatch(sec); m == nil || m[1] != "4.0" {
		t.Errorf("systemd-analyze security: exposure %v, docs/packaging.md records 4.0:\n%s", m, sec)
	}

	// An admin's change to the config and a bundle survive the upgrade and the remove.
	conf := filepath.Join(r, "etc/aod/aod.yaml")
	edited := append(readFile(t, conf), "# edited by the admin\n"...)
	if err := os.WriteFile(conf, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(r, "var/log/aod/batches/aod_quick_1_smb_latency.tar.zst")
	if err := os.MkdirAll(filepath.Dir(bundle), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bundle, []byte("bundle"), 0o600); err != nil {
		t.Fatal(err)
	}

	in("dpkg", "-i", "/tmp/"+filepath.Base(p.upgrade))
	if v := in("dpkg-query", "-W", "-f", "${Version}", "aod"); v != p.version+"+1-1" {
		t.Errorf("upgraded to %q, want %s+1-1", v, p.version)
	}
	if b := readFile(t, conf); !bytes.Equal(b, edited) {
		t.Errorf("upgrade replaced the edited /etc/aod/aod.yaml")
	}
	if !exists(wants) {
		t.Errorf("upgrade disabled the service")
	}

	in("dpkg", "-r", "aod")
	if exists("/usr/bin/aod") || exists("/lib/systemd/system/aod.service") {
		t.Errorf("remove left the binary or the unit")
	}
	if b, err := os.ReadFile(conf); err != nil || !bytes.Equal(b, edited) {
		t.Errorf("remove did not keep the edited config (%v)", err)
	}
	if !exists(strings.TrimPrefix(bundle, r)) {
		t.Errorf("remove deleted the bundles")
	}
	// Masked while removed (as debhelper does), so a leftover enable link starts nothing.
	if l, err := os.Readlink(filepath.Join(r, "etc/systemd/system/aod.service")); err != nil || l != "/dev/null" {
		t.Errorf("removed: aod.service not masked (%q, %v)", l, err)
	}

	in("dpkg", "-P", "aod")
	for _, path := range []string{"/etc/aod", "/var/log/aod", wants, "/etc/systemd/system/aod.service"} {
		if exists(path) {
			t.Errorf("purge left %s", path)
		}
	}
	if out, err := exec.Command("chroot", r, "dpkg-query", "-W", "aod").CombinedOutput(); err == nil {
		t.Errorf("purged, dpkg still knows aod: %s", out)
	}
}

// TestRPMLifecycle installs, upgrades and erases the .rpm with this machine's rpm in
// a throwaway root, as TestDebLifecycle does the .deb.
func TestRPMLifecycle(t *testing.T) {
	p := build(t)
	if os.Geteuid() != 0 {
		t.Fatal("needs root (rpm into an overlay of /)")
	}
	r := throwawayRoot(t)
	copyIn(t, r, p.rpm, p.upgradeRPM)
	in := func(args ...string) string {
		t.Helper()
		return run(t, "chroot", append([]string{r}, args...)...)
	}
	exists := func(path string) bool {
		_, err := os.Lstat(filepath.Join(r, path))
		return err == nil
	}
	const wants = "/etc/systemd/system/multi-user.target.wants/aod.service"

	// --nodeps: the machine's rpm database knows none of the Debian packages.
	in("rpm", "-i", "--nodeps", "/tmp/"+filepath.Base(p.rpm))
	if !exists("/usr/bin/aod") || !exists("/usr/lib/systemd/system/aod.service") {
		t.Errorf("installed: binary or unit missing")
	}
	if !exists(wants) {
		t.Errorf("installed: the service is not enabled (%s)", wants)
	}
	conf := filepath.Join(r, "etc/aod/aod.yaml")
	edited := append(readFile(t, conf), "# edited by the admin\n"...)
	if err := os.WriteFile(conf, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(r, "var/log/aod/batches/aod_quick_1_smb_latency.tar.zst")
	if err := os.MkdirAll(filepath.Dir(bundle), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bundle, []byte("bundle"), 0o600); err != nil {
		t.Fatal(err)
	}

	in("rpm", "-U", "--nodeps", "/tmp/"+filepath.Base(p.upgradeRPM))
	if v := in("rpm", "-q", "--qf", "%{VERSION}", "aod"); v != p.version+"+1" {
		t.Errorf("upgraded to %q, want %s+1", v, p.version)
	}
	if b := readFile(t, conf); !bytes.Equal(b, edited) {
		t.Errorf("upgrade replaced the edited /etc/aod/aod.yaml")
	}
	if !exists(wants) {
		t.Errorf("upgrade disabled the service")
	}

	in("rpm", "-e", "--nodeps", "aod")
	if exists("/usr/bin/aod") || exists("/usr/lib/systemd/system/aod.service") || exists(wants) {
		t.Errorf("erase left the binary, the unit or its enable link")
	}
	// rpm has no purge: an edited config is kept aside, the bundles stay.
	if b, err := os.ReadFile(conf + ".rpmsave"); err != nil || !bytes.Equal(b, edited) {
		t.Errorf("erase did not keep the edited config as aod.yaml.rpmsave (%v)", err)
	}
	if !exists(strings.TrimPrefix(bundle, r)) {
		t.Errorf("erase deleted the bundles")
	}
}

// copyIn copies files into the root's /tmp.
func copyIn(t *testing.T, r string, files ...string) {
	t.Helper()
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(r, "tmp", filepath.Base(f)), readFile(t, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// throwawayRoot moves the test's goroutine, locked to its thread for good (the thread
// ends with the test), into a private mount namespace and returns an overlay of / there
// whose writes go to a tmpfs, with /proc, /dev, /run and /tmp of its own. Commands the
// test starts from this goroutine inherit the namespace; nothing else sees it.
func throwawayRoot(t *testing.T) string {
	t.Helper()
	runtime.LockOSThread() // never unlocked: the thread exits with the test's goroutine
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		t.Fatalf("unshare: %v", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		t.Fatalf("make mounts private: %v", err)
	}
	base := t.TempDir()
	if err := unix.Mount("tmpfs", base, "tmpfs", 0, ""); err != nil {
		t.Fatalf("tmpfs: %v", err)
	}
	// Before TempDir's cleanup (cleanups run last first), which would walk /proc.
	t.Cleanup(func() {
		if err := unix.Unmount(base, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount the throwaway root: %v", err)
		}
	})
	r := filepath.Join(base, "root")
	for _, d := range []string{"upper", "work", "root"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := "lowerdir=/,upperdir=" + filepath.Join(base, "upper") + ",workdir=" + filepath.Join(base, "work")
	mounts := []struct{ src, dst, fs, opts string }{
		{"overlay", r, "overlay", opts},
		{"proc", r + "/proc", "proc", ""},
		{"tmpfs", r + "/run", "tmpfs", ""},
		{"tmpfs", r + "/tmp", "tmpfs", ""},
		// A /dev of its own, never a bind of the machine's: whatever removes the
		// root's files (dpkg, a failed cleanup) must not reach the real devices.
		{"tmpfs", r + "/dev", "tmpfs", "mode=0755"},
	}
	for _, m := range mounts {
		if err := unix.Mount(m.src, m.dst, m.fs, 0, m.opts); err != nil {
			t.Fatalf("mount %s on %s: %v", m.fs, m.dst, err)
		}
	}
	for name, minor := range map[string]uint32{"null": 3, "zero": 5, "urandom": 9} {
		if err := unix.Mknod(filepath.Join(r, "dev", name), unix.S_IFCHR|0o666, int(unix.Mkdev(1, minor))); err != nil {
			t.Fatalf("mknod /dev/%s: %v", name, err)
		}
	}
	if err := os.Symlink("/proc/self/fd", filepath.Join(r, "dev/fd")); err != nil {
		t.Fatal(err)
	}
	return r
}

func sum(t *testing.T, path string) [32]byte {
	t.Helper()
	return sha256.Sum256(readFile(t, path))
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
