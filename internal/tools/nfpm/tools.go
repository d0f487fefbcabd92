//go:build tools

// Package nfpm pins nfpm, the packager `make package` runs, in a module of its
// own: its requirements (x/tools among them) would otherwise move the versions
// mdatagen in ../ generates code with.
package nfpm

import (
	_ "github.com/goreleaser/nfpm/v2/cmd/nfpm"
)
