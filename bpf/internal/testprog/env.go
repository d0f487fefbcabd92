package testprog

import (
	"errors"
	"os"
	"runtime"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Require skips tb where BPF programs cannot be loaded at all: not Linux, or not root.
func Require(tb testing.TB) {
	tb.Helper()
	if runtime.GOOS != "linux" {
		tb.Skipf("aod's BPF programs need Linux, not %s", runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		tb.Skip("loading BPF programs needs root (CI runs the BPF tests as root)")
	}
}

// CheckLoad judges the error of loading BPF programs: it skips tb when the kernel or
// the environment does not allow BPF (EPERM in a container without CAP_BPF or under
// lockdown, ENOSYS without the bpf system call, a missing kernel feature), fails tb on
// any other error, and does nothing on nil.
func CheckLoad(tb testing.TB, err error) {
	tb.Helper()
	switch {
	case err == nil:
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.ENOSYS), errors.Is(err, ebpf.ErrNotSupported):
		tb.Skipf("BPF not available here: %v", err)
	default:
		tb.Fatal(err)
	}
}
