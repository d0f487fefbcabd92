// Package mountinfo reads the mount table of /proc/<pid>/mountinfo: each mount's id
// (the one the kernel's io probe reports), mount point, file system type and source.
// It reads what the kernel keeps in memory; no mounted file system is touched.
package mountinfo

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Mount is one line of mountinfo.
type Mount struct {
	ID     uint32
	Point  string // unescaped
	FSType string // with its subtype, as mountinfo gives it ("fuse.sshfs")
	Source string // the mount source ("//server/share", "server:/export")
}

// Parse reads a mountinfo file; name is used in errors. A malformed line is an error
// naming the line; the mounts before it are returned with it.
func Parse(name string, r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		m, err := parseLine(sc.Text())
		if err != nil {
			return out, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// parseLine reads "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw".
func parseLine(s string) (Mount, error) {
	f := strings.Fields(s)
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if sep < 0 || sep+2 >= len(f) {
		return Mount{}, fmt.Errorf("not a mountinfo line (want at least 10 fields with a \"-\" separator): %q", s)
	}
	id, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil {
		return Mount{}, fmt.Errorf("mount id %q: not a number", f[0])
	}
	return Mount{ID: uint32(id), Point: unescape(f[4]), FSType: f[sep+1], Source: unescape(f[sep+2])}, nil
}

// unescape undoes the kernel's octal escapes of space, tab, newline and backslash.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1:i+4]) {
			v, _ := strconv.ParseUint(s[i+1:i+4], 8, 8)
			b.WriteByte(byte(v))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '7' {
			return false
		}
	}
	return s[0] <= '3'
}

// magics are the super block magics (include/uapi/linux/magic.h) of the file system
// types the io probe can be scoped to by type, so that a mount made after the mount
// table was last read is in scope at once through its descriptors.
var magics = map[string]uint32{
	"cifs": 0xFF534D42, "smb3": 0xFE534D42, "nfs": 0x6969, "nfs4": 0x6969,
	"tmpfs": 0x01021994, "ext2": 0xEF53, "ext3": 0xEF53, "ext4": 0xEF53, "xfs": 0x58465342,
	"btrfs": 0x9123683E, "fuse": 0x65735546, "overlay": 0x794C7630,
}

// Magic returns the super block magic of a file system type, if it is one aod knows.
func Magic(fsType string) (uint32, bool) {
	m, ok := magics[fsType]
	return m, ok
}

// TypeOfMagic names the file system type of a super block magic, or "" for one aod
// does not know (nfs and nfs4 share theirs: it is named nfs).
func TypeOfMagic(magic uint32) string {
	switch magic {
	case 0x6969:
		return "nfs"
	case 0xEF53:
		return "ext4"
	}
	for name, m := range magics {
		if m == magic {
			return name
		}
	}
	return ""
}
