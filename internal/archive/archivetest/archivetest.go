// Package archivetest reads diagnostic bundles back for tests, with Go's own tar and
// zstd readers, checking the layout the archive writer guarantees.
package archivetest

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Members returns the bundle's top directory and its regular members by their path
// under it. It fails when a member lies outside that one directory or is not mode
// 0600.
func Members(path string) (top string, members map[string][]byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		return "", nil, err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	members = map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return top, members, nil
		}
		if err != nil {
			return "", nil, err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		dir, rel, ok := strings.Cut(h.Name, "/")
		if top == "" {
			top = dir
		}
		if !ok || dir != top {
			return "", nil, fmt.Errorf("member %s is outside the bundle's directory %s", h.Name, top)
		}
		if h.Mode != 0o600 {
			return "", nil, fmt.Errorf("member %s has mode %o, want 600", h.Name, h.Mode)
		}
		if members[rel], err = io.ReadAll(tr); err != nil {
			return "", nil, err
		}
	}
}
