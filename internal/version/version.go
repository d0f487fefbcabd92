// Package version identifies the build. Version and Commit are set at link time:
//
//	go build -ldflags "-X github.com/linuxdiag/aod/internal/version.Version=v1.2.3 \
//	  -X github.com/linuxdiag/aod/internal/version.Commit=abc1234" ./cmd/aod
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release version; "dev" for a build without -ldflags.
var Version = "dev"

// Commit is the source revision; "unknown" for a build without -ldflags, unless the Go
// toolchain recorded the VCS revision in the binary.
var Commit = "unknown"

// GoVersion is the Go toolchain that built the binary.
func GoVersion() string { return runtime.Version() }

// Revision returns Commit, falling back to the revision `go build` stamps into the
// binary when -ldflags did not set one (a plain `go build` in a git checkout).
func Revision() string {
	if Commit != "unknown" {
		return Commit
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 7 {
				return s.Value[:7]
			}
		}
	}
	return Commit
}

// String is the one-line form `aod version` prints.
func String() string {
	return fmt.Sprintf("aod %s (commit %s, %s, %s/%s)", Version, Revision(), GoVersion(), runtime.GOOS, runtime.GOARCH)
}
