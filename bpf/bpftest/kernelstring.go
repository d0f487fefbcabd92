package bpftest

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// KernelString returns the kernel address of a string the connection programs can
// read as the server name (the hostname argument of Reconnect, ConnectDone,
// ConnectErr), and the name they will record: linux_banner ("Linux version ..."), cut
// to the 63 bytes the event keeps. The tracepoints' hostname is a kernel pointer, so a
// test cannot pass a name of its own. Where kallsyms hides kernel addresses
// (kptr_restrict) it returns 0 and "": the programs then record an empty name, which
// is what they must do with an unreadable pointer.
func KernelString(tb testing.TB) (addr uint64, text string) {
	tb.Helper()
	data, err := os.ReadFile("/proc/kallsyms")
	if err != nil {
		tb.Logf("bpftest: no kallsyms (%v): server names read from address 0, as empty", err)
		return 0, ""
	}
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) < 3 || f[2] != "linux_banner" {
			continue
		}
		addr, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil || addr == 0 {
			break
		}
		banner, err := os.ReadFile("/proc/version")
		if err != nil {
			tb.Fatal(err)
		}
		return addr, string(banner[:min(len(banner), 63)]) // server[64]: 63 bytes and a NUL
	}
	tb.Log("bpftest: linux_banner's address is hidden (kptr_restrict): server names read from address 0, as empty")
	return 0, ""
}
