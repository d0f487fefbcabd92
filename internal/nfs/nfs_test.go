package nfs

import (
	"strings"
	"testing"

	"github.com/linuxdiag/aod/internal/proto"
)

func TestCommandTable(t *testing.T) {
	want := map[uint16]string{
		0: "NFSPROC4_CLNT_NULL", V4Read: "NFSPROC4_CLNT_READ", V4Open: "NFSPROC4_CLNT_OPEN",
		V4GetAttr: "NFSPROC4_CLNT_GETATTR", V4Lookup: "NFSPROC4_CLNT_LOOKUP", V4Sequence: "NFSPROC4_CLNT_SEQUENCE",
		68: "NFSPROC4_CLNT_READ_PLUS", 69: "NFSPROC4_CLNT_ZERO_RANGE", 70: "NFSPROC4_CLNT_OFFLOAD_STATUS",
		V3Null: "NFS3PROC_NULL", V3Access: "NFS3PROC_ACCESS", V3Write: "NFS3PROC_WRITE",
		V3Rmdir: "NFS3PROC_RMDIR", V3Commit: "NFS3PROC_COMMIT", ACL3GetACL: "NFSACL3PROC_GETACL",
		Other: "NFS_PROC_OTHER",
	}
	for code, name := range want {
		if got := Command(code).String(); got != name {
			t.Errorf("Command(%d) = %q, want %q", code, got, name)
		}
		if got, ok := Table.LookupCommand(name); !ok || got != code {
			t.Errorf("LookupCommand(%q) = %d, %v; want %d", name, got, ok, code)
		}
	}
	// AODv2's configuration names NFSv4 procedures with or without the prefix.
	if got, ok := Table.LookupCommand("READ"); !ok || got != V4Read {
		t.Errorf("LookupCommand(READ) = %d, %v; want NFSv4 READ", got, ok)
	}
	for _, bad := range []string{"", "NFSPROC4_CLNT_", "nfsproc4_clnt_read", "NFS3PROC_READX", "NFS4PROC_READ"} {
		if code, ok := Table.LookupCommand(bad); ok {
			t.Errorf("LookupCommand(%q) = %d, want not found", bad, code)
		}
	}
	if got := Command(100 + 30).String(); got != "NFS_PROC_130" {
		t.Errorf("an unlisted code is %q", got)
	}
	if proto.Lookup(proto.NFS) != Table || Table.NumCommands() != proto.MaxCommands {
		t.Errorf("NFS table not registered, or %d codes", Table.NumCommands())
	}
	// The codes the kernel programs compute (bpf/include/aod.h's AOD_NFS_*).
	if V3Base != 96 || ACL3Base != 120 || Other != 127 || len(v4Names) > int(V3Base) || int(V3Base)+len(v3Names) > int(ACL3Base) {
		t.Errorf("code layout changed: v3 %d acl %d other %d", V3Base, ACL3Base, Other)
	}
}

// AODv2's numbering (src/utils/shared_data.py ALL_NFS_CMDS) is the table's for 0-68.
func TestV4CodesAreAODv2s(t *testing.T) {
	aodv2 := map[string]uint16{"NFSPROC4_CLNT_NULL": 0, "NFSPROC4_CLNT_WRITE": 2, "NFSPROC4_CLNT_OPEN_NOATTR": 6,
		"NFSPROC4_CLNT_SETCLIENTID_CONFIRM": 13, "NFSPROC4_CLNT_LOOKUP_ROOT": 20, "NFSPROC4_CLNT_DELEGRETURN": 31,
		"NFSPROC4_CLNT_SECINFO": 36, "NFSPROC4_CLNT_SEQUENCE": 41, "NFSPROC4_CLNT_LAYOUTSTATS": 57,
		"NFSPROC4_CLNT_LOOKUPP": 61, "NFSPROC4_CLNT_READ_PLUS": 68}
	for name, code := range aodv2 {
		if got := V4Code(name); got != code {
			t.Errorf("%s: code %d, AODv2 %d", name, got, code)
		}
		if got := V4Code(strings.TrimPrefix(name, "NFSPROC4_CLNT_")); got != code {
			t.Errorf("%s without prefix: code %d", name, got)
		}
	}
	if got := V4Code("NFS3PROC_READ"); got != Other {
		t.Errorf("an NFSv3 name as NFSv4 procedure: %d", got)
	}
	if got := Canonical([]string{"NULL", "BOGUS", "READ"}); len(got) != 3 || got[0] != 0 || got[1] != Other || got[2] != V4Read {
		t.Errorf("Canonical = %v", got)
	}
}

func TestStatusNames(t *testing.T) {
	for code, name := range map[uint32]string{2: "NFS4ERR_NOENT", 66: "NFS4ERR_NOTEMPTY", 10013: "NFS4ERR_GRACE",
		10025: "NFS4ERR_BAD_STATEID", 10024: "NFS4ERR_OLD_STATEID", 19: "NFS3ERR_NODEV", 10097: "NFS4ERR_FIRST_FREE",
		uint32(0xffffff92): "ETIMEDOUT", uint32(0xfffffffb): "EIO"} {
		if got := Status(code).String(); got != name {
			t.Errorf("Status(%d) = %q, want %q", code, got, name)
		}
		if got, ok := LookupStatus(name); !ok || got != code {
			t.Errorf("LookupStatus(%q) = %d, %v; want %d", name, got, ok, code)
		}
	}
	for alias, code := range map[string]uint32{"NFS3ERR_NOTEMPTY": 66, "NFS3ERR_JUKEBOX": 10008, "NFS3ERR_ACCES": 13} {
		if got, ok := LookupStatus(alias); !ok || got != code {
			t.Errorf("LookupStatus(%q) = %d, %v; want %d", alias, got, ok, code)
		}
	}
	for _, bad := range []string{"", "NFS4ERR_", "nfs4err_noent", "NFS4ERR_NOPE", "E"} {
		if code, ok := LookupStatus(bad); ok {
			t.Errorf("LookupStatus(%q) = %d, want not found", bad, code)
		}
	}
	if got := Status(12345).String(); got != "0x00003039" {
		t.Errorf("unnamed status: %q", got)
	}
	n := 0
	for name := range StatusNames() {
		if _, ok := LookupStatus(name); !ok {
			t.Errorf("StatusNames yields %q, which LookupStatus refuses", name)
		}
		n++
	}
	if n != len(statusNames)+len(v3Aliases) {
		t.Errorf("%d names", n)
	}
}

func TestNamesDoNotAllocate(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() {
		_ = Command(V4Open).String()
		_ = StatusName(10025)
		_ = StatusName(0xffffff92)
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
