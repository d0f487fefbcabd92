package io

import (
	"testing"

	"github.com/linuxdiag/aod/internal/proto"
)

// AODv2 iosnoop's operation names, in its order.
var aodv2Ops = []string{"OPEN", "READ", "WRITE", "STAT", "MKDIR", "RMDIR", "UNLINK", "RENAME", "FCHMOD",
	"TRUNCATE", "LINK", "SYMLINK", "READLINK", "READV", "WRITEV", "MMAP", "MUNMAP", "CREATE", "FALLOCATE",
	"GETDENTS", "LOCK_FCNTL"}

func TestOperationNames(t *testing.T) {
	if int(NumOps) != len(aodv2Ops) || proto.Lookup(proto.IO) != Table {
		t.Fatalf("%d operations, AODv2 has %d; registered: %v", NumOps, len(aodv2Ops), proto.Lookup(proto.IO) == Table)
	}
	for code, name := range aodv2Ops {
		if got := Command(uint16(code)).String(); got != name {
			t.Errorf("code %d: %q, want %q", code, got, name)
		}
		if got, ok := Table.LookupCommand(name); !ok || got != uint16(code) {
			t.Errorf("LookupCommand(%q) = %d, %v", name, got, ok)
		}
	}
	for _, bad := range []string{"", "open", "LOCK", "FCNTL", "IO_OP_0"} {
		if _, ok := Table.LookupCommand(bad); ok {
			t.Errorf("LookupCommand(%q) accepted", bad)
		}
	}
	if got := Command(40).String(); got != "IO_OP_40" {
		t.Errorf("unlisted op: %q", got)
	}
}

func TestStatusesAreErrnos(t *testing.T) {
	for code, name := range map[uint32]string{2: "ENOENT", 5: "EIO", 116: "ESTALE", 122: "EDQUOT", 30: "EROFS", 11: "EAGAIN"} {
		if got := Status(code).String(); got != name {
			t.Errorf("Status(%d) = %q, want %q", code, got, name)
		}
		if got, ok := LookupStatus(name); !ok || got != code {
			t.Errorf("LookupStatus(%q) = %d, %v", name, got, ok)
		}
	}
	if got, ok := LookupStatus("EWOULDBLOCK"); !ok || got != 11 {
		t.Errorf("the alias EWOULDBLOCK is %d, %v", got, ok)
	}
	for _, bad := range []string{"", "STATUS_IO_TIMEOUT", "NFS4ERR_STALE", "eio"} {
		if _, ok := LookupStatus(bad); ok {
			t.Errorf("LookupStatus(%q) accepted", bad)
		}
	}
	if got := Status(0xffffff00).String(); got != "0xffffff00" {
		t.Errorf("unnamed status: %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { _ = Command(Stat).String(); _ = StatusName(116) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
