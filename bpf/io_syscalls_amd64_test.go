//go:build linux

package bpf

import (
	"testing"

	fileio "github.com/linuxdiag/aod/internal/io"
)

// TestIOOpCodesAreTheTables: the operation codes the loader writes are internal/io's.
func TestIOOpCodesAreTheTables(t *testing.T) {
	if uint16(ioNumOps) != fileio.NumOps || ioNumOps > ioNumOpSlots {
		t.Fatalf("%d operations here, %d in internal/io, %d slots in the kernel", ioNumOps, fileio.NumOps, ioNumOpSlots)
	}
	for _, c := range []struct {
		here  uint8
		there uint16
	}{{ioOpen, fileio.Open}, {ioStat, fileio.Stat}, {ioRename, fileio.Rename}, {ioMmap, fileio.Mmap},
		{ioCreate, fileio.Create}, {ioGetdents, fileio.Getdents}, {ioLockFcntl, fileio.LockFcntl}} {
		if uint16(c.here) != c.there {
			t.Errorf("%s: code %d here, %d in internal/io", fileio.Command(c.there), c.here, c.there)
		}
	}
	seen := map[uint32]bool{}
	ops := map[uint8]bool{}
	for _, c := range ioCalls {
		if seen[c.nr] || c.nr >= ioMaxSyscalls {
			t.Errorf("system call %d listed twice or out of the table", c.nr)
		}
		seen[c.nr] = true
		ops[c.op] = true
	}
	if len(ops) != int(ioNumOps) {
		t.Errorf("system calls for %d of the %d operations", len(ops), ioNumOps)
	}
}
