package config

import (
	"errors"
	"os"
	"reflect"
	"testing"

	"github.com/linuxdiag/aod/configs"
	"github.com/linuxdiag/aod/internal/fixtures"
)

// FuzzLoadConfig feeds arbitrary bytes to the loader: it must never panic, must
// explain every rejection with a positioned issue, and whatever it accepts must
// survive show -> load unchanged.
func FuzzLoadConfig(f *testing.F) {
	f.Add(configs.Default)
	for _, p := range []string{fixture2025, fixture2026} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range roundTripSources {
		f.Add([]byte(s))
	}
	for _, c := range badCases {
		f.Add([]byte(c.yaml))
	}
	for _, c := range compatCases {
		f.Add([]byte(c.yaml))
	}
	for name := range aodv2Files {
		data, err := os.ReadFile(fixtures.Path("aodv2/tests/" + name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, _, err := Parse("fuzz.yaml", data)
		if err != nil {
			var cerr *Error
			if !errors.As(err, &cerr) || len(cerr.Issues) == 0 {
				t.Fatalf("error %v is not an *Error with issues", err)
			}
			for _, is := range cerr.Issues {
				if is.File != "fuzz.yaml" || is.Message == "" {
					t.Fatalf("bad issue %#v", is)
				}
			}
			if cfg != nil {
				t.Fatal("config returned with an error")
			}
			return
		}
		shown, err := cfg.YAML()
		if err != nil {
			t.Fatalf("YAML: %v", err)
		}
		again, _, err := Parse("shown.yaml", shown)
		if err != nil {
			t.Fatalf("show output rejected: %v\n%s", err, shown)
		}
		if !reflect.DeepEqual(cfg, again) {
			t.Fatalf("show -> load differs\n%s", shown)
		}
	})
}
