package packaging_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersionsOrderAsTheHistory runs version.sh in a scratch repository through a
// history of commits and tags and checks each version is what docs/packaging.md says
// and that dpkg and rpm both order them as the history goes: an upgrade is always
// newer.
func TestVersionsOrderAsTheHistory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "packaging"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := readFile(t, "version.sh")
	if err := os.WriteFile(filepath.Join(dir, "packaging/version.sh"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@t", "-c", "tag.gpgsign=false", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	commit := func() string {
		git("commit", "-q", "--allow-empty", "-m", "c")
		return git("rev-parse", "--short=7", "HEAD")
	}
	version := func() string {
		t.Helper()
		cmd := exec.Command(filepath.Join(dir, "packaging/version.sh"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("version.sh: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", "packaging")
	var got, want []string
	step := func(w string) { got, want = append(got, version()), append(want, w) }

	h := commit()
	step("0.0.0~1.g" + h)
	h = commit()
	step("0.0.0~2.g" + h)
	if err := os.WriteFile(filepath.Join(dir, "packaging/version.sh"), append(script, '\n'), 0o755); err != nil {
		t.Fatal(err)
	}
	step("0.0.0~2.g" + h + ".dirty")
	git("checkout", "-q", "--", "packaging/version.sh")
	commit()
	git("tag", "v0.1.0")
	step("0.1.0")
	h = commit()
	step("0.1.0+1.g" + h)
	h = commit()
	step("0.1.0+2.g" + h)
	commit()
	git("tag", "v0.2.0-rc1")
	step("0.2.0~rc1")
	commit()
	git("tag", "v0.2.0")
	step("0.2.0")

	for i := range want {
		if got[i] != want[i] {
			t.Errorf("step %d: version %q, want %q", i, got[i], want[i])
		}
	}
	// The dirty build sits beside its commit; every other step is an upgrade.
	order := []string{got[0], got[1], got[3], got[4], got[5], got[6], got[7]}
	for i := 1; i < len(order); i++ {
		a, b := order[i-1], order[i]
		if err := exec.Command("dpkg", "--compare-versions", b+"-1", "gt", a+"-1").Run(); err != nil {
			t.Errorf("dpkg: %s is not newer than %s", b, a)
		}
		out, err := exec.Command("rpm", "--eval", `%{lua: print(rpm.vercmp("`+b+`", "`+a+`"))}`).Output()
		if err != nil || strings.TrimSpace(string(out)) != "1" {
			t.Errorf("rpm: %s is not newer than %s (%q, %v)", b, a, out, err)
		}
	}
}
