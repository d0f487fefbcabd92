package nfsproc_test

import (
	"os"
	"testing"

	"github.com/linuxdiag/aod/internal/fixtures"
	"github.com/linuxdiag/aod/internal/nfs"
	"github.com/linuxdiag/aod/internal/nfsproc"
)

// Every operation a real kernel's mountstats lists is named by ONCRPC as mountstats
// names it, with its mount's program and version: the probes' series join the kernel's
// per-operation counters on those attributes.
func TestONCRPCNamesAsMountstats(t *testing.T) {
	compared := 0
	for _, k := range []string{"6.1", "6.12", "7.3"} {
		file := fixtures.Path("kernel-" + k + "/nfs/mountstats.after")
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		mounts, err := nfsproc.Parse(file, f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mounts {
			var names []string
			for _, op := range m.Ops {
				names = append(names, op.Name)
			}
			codes := nfs.Canonical(names)
			for i, op := range m.Ops {
				code := codes[i]
				if m.Version == 3 {
					code = nfs.V3Base + uint16(i)
				}
				program, version, procedure, ok := nfs.Table.ONCRPC(code)
				if !ok || program != m.ProgramName || version != int(m.Version) || procedure != op.Name {
					t.Errorf("%s %s op %s (code %d): ONCRPC gives %q %d %q %v", k, m.MountPoint, op.Name, code, program, version, procedure, ok)
				}
				compared++
			}
		}
	}
	if compared < 100 {
		t.Fatalf("only %d operations compared", compared)
	}
	if _, _, _, ok := nfs.Table.ONCRPC(nfs.Other); ok {
		t.Error("the code of other procedures is named")
	}
	if p, v, proc, ok := nfs.Table.ONCRPC(nfs.ACL3GetACL); !ok || p != "nfsacl" || v != 3 || proc != "GETACL" {
		t.Errorf("ACL3GetACL: %q %d %q %v", p, v, proc, ok)
	}
}
