package mountinfo

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	src := `22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
36 22 0:33 / /mnt/my\040share rw,relatime shared:20 - cifs //srv/share rw,vers=3.1.1
37 22 0:34 / /mnt/nfs rw,relatime - nfs4 127.0.0.1:/ rw,vers=4.2
38 22 0:35 / /run/user/0 rw,nosuid master:3 opt:1 - tmpfs tmpfs rw
`
	ms, err := Parse("mountinfo", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []Mount{{22, "/", "ext4", "/dev/vda1"}, {36, "/mnt/my share", "cifs", "//srv/share"},
		{37, "/mnt/nfs", "nfs4", "127.0.0.1:/"}, {38, "/run/user/0", "tmpfs", "tmpfs"}}
	if len(ms) != len(want) {
		t.Fatalf("%d mounts: %+v", len(ms), ms)
	}
	for i := range want {
		if ms[i] != want[i] {
			t.Errorf("line %d: %+v, want %+v", i+1, ms[i], want[i])
		}
	}
	for _, bad := range []string{"22 1 0:21 / / rw shared:1 ext4 /dev/vda1 rw", "x 1 0:21 / / rw - ext4 /dev/vda1 rw", "1 2 3 - a"} {
		ms, err := Parse("m", strings.NewReader("22 1 0:21 / / rw - ext4 /dev/vda1 rw\n"+bad+"\n"))
		if err == nil || !strings.HasPrefix(err.Error(), "m:2: ") || len(ms) != 1 {
			t.Errorf("%q: %v, %d mounts", bad, err, len(ms))
		}
	}
}

func TestMagic(t *testing.T) {
	for name, want := range map[string]uint32{"cifs": 0xFF534D42, "smb3": 0xFE534D42, "nfs": 0x6969, "nfs4": 0x6969} {
		if got, ok := Magic(name); !ok || got != want {
			t.Errorf("Magic(%s) = %#x, %v", name, got, ok)
		}
	}
	if _, ok := Magic("nosuchfs"); ok {
		t.Error("an unknown type has a magic")
	}
	if TypeOfMagic(0x6969) != "nfs" || TypeOfMagic(0xFF534D42) != "cifs" || TypeOfMagic(1) != "" {
		t.Error("TypeOfMagic")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("36 22 0:33 / /mnt/a\\134b rw - cifs //s/x rw\n")
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := Parse("f", strings.NewReader(s))
		if err == nil && strings.TrimSpace(s) != "" && len(ms) == 0 {
			t.Errorf("no error and no mount from %q", s)
		}
	})
}
