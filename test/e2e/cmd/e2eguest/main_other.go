//go:build !linux

package main

import (
	"fmt"
	"os"
	"runtime"
)

// The probe needs Linux's BPF and runs only in the e2e guest; this stub exists so the
// module builds and vets on any OS, and says why it does nothing when run.
func main() {
	fmt.Fprintf(os.Stderr, "e2eguest: runs only in the Linux e2e guest, not on %s\n", runtime.GOOS)
	os.Exit(1)
}
