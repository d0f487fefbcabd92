package actions

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// mount is one entry of a mounts file.
type mount struct {
	Source, Target, FSType, Options string
}

// mountsOf lists the entries of a mounts file (fields: source target fstype options
// ..., with spaces and other specials octal-escaped) of the given file system types.
// It reads the table only: nothing under a mount point is touched, so a dead server
// cannot hang it.
func mountsOf(r io.Reader, fstypes ...string) ([]mount, error) {
	var mounts []mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !slices.Contains(fstypes, f[2]) {
			continue
		}
		mounts = append(mounts, mount{Source: unescapeMount(f[0]), Target: unescapeMount(f[1]), FSType: f[2], Options: f[3]})
	}
	return mounts, sc.Err()
}

// unescapeMount undoes the kernel's \ooo escaping of mount fields.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// readMounts lists the entries of the mounts file at path of the given types.
func readMounts(path string, fstypes ...string) ([]mount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	mounts, err := mountsOf(f, fstypes...)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return mounts, nil
}
