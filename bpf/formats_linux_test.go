//go:build linux

package bpf

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/linuxdiag/aod/internal/fixtures"
)

// fieldLine matches one non-common field of a tracepoint format file.
var fieldLine = regexp.MustCompile(`^\tfield:(.+?) (\w+)(\[\d*\])?;\toffset:\d+;\tsize:(\d+);`)

// formatArgs reads the argument shapes of each tracepoint from a format file: a
// scalar field is an integer argument of its size; a string (__data_loc) or an array
// field is stored from a pointer argument. For the cifs classes the fields are
// declared in TP_PROTO order.
func formatArgs(t *testing.T, path string) map[string][]protoArg {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]protoArg{}
	var name string
	for line := range strings.Lines(string(data)) {
		if n, ok := strings.CutPrefix(line, "name: "); ok {
			name = strings.TrimSpace(n)
			out[name] = []protoArg{}
			continue
		}
		m := fieldLine.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(m[2], "common_") {
			continue
		}
		size, _ := strconv.Atoi(m[4])
		if strings.HasPrefix(m[1], "__data_loc") || m[3] != "" {
			out[name] = append(out[name], argPtr)
		} else {
			out[name] = append(out[name], protoArg{size: uint32(size)})
		}
	}
	return out
}

// TestProgramsMatchRealTracepointFormats checks the argument layout every program
// assumes against the format files of real Debian 6.1 and 6.12 kernels with cifs.
func TestProgramsMatchRealTracepointFormats(t *testing.T) {
	var p Probes // only the table's names and argument shapes are used
	for _, file := range []string{fixtures.Path("kernel-6.1/cifs-formats.txt"), fixtures.Path("kernel-6.12/cifs-formats.txt")} {
		formats := formatArgs(t, file)
		for _, tp := range p.tracepoints() {
			got, ok := formats[tp.name]
			if !ok {
				t.Errorf("%s: no tracepoint %s", file, tp.name)
				continue
			}
			if !slices.Equal(got, tp.args) {
				t.Errorf("%s: %s has (%s), the program reads (%s)", file, tp.name, joinArgs(got), joinArgs(tp.args))
			}
		}
	}
}
