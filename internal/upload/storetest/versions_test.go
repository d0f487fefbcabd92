package storetest

import (
	"os"
	"regexp"
	"testing"
)

// TestMakefileInstallsTheseVersions keeps `make setup` and the versions named
// here (in skip messages) the same.
func TestMakefileInstallsTheseVersions(t *testing.T) {
	mk, err := os.ReadFile("../../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"AZURITE_VERSION": AzuriteVersion, "VERSITYGW_VERSION": VersityGWVersion} {
		m := regexp.MustCompile(`(?m)^` + name + `\s*:=\s*(\S+)$`).FindSubmatch(mk)
		if m == nil || string(m[1]) != want {
			t.Errorf("Makefile %s = %q; storetest says %q", name, m, want)
		}
	}
}
