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
// assumes against the format files of the Debian kernels of the e2e matrix (5.10, 6.1,
// 6.12, 7.3). Where a kernel lacks a tracepoint or has an older argument list the
// program cannot attach there; those cases are listed, so a change in either direction
// (a new kernel dropping a hook, a program changing its layout) fails.
func TestProgramsMatchRealTracepointFormats(t *testing.T) {
	var p Probes // only the table's names and argument shapes are used
	for _, k := range []struct {
		kernel string
		// cannot: the tracepoints the kernel has not (absent) or with other arguments.
		absent, other []string
	}{
		// Debian 5.10: smb3_reconnect is (currmid, hostname), without conn_id (5.11);
		// the connect events came with 5.11 too.
		{kernel: "kernel-5.10", absent: []string{"smb3_connect_done", "smb3_connect_err"}, other: []string{"smb3_reconnect"}},
		{kernel: "kernel-6.1"},
		{kernel: "kernel-6.12"},
		{kernel: "kernel-7.3"},
	} {
		file := fixtures.Path(k.kernel + "/cifs-formats.txt")
		formats := formatArgs(t, file)
		for _, tp := range p.tracepoints() {
			got, ok := formats[tp.name]
			switch {
			case tp.required && (slices.Contains(k.absent, tp.name) || slices.Contains(k.other, tp.name)):
				t.Errorf("%s: the required %s is listed as unusable", file, tp.name)
			case slices.Contains(k.absent, tp.name):
				if ok {
					t.Errorf("%s: has %s, listed as absent", file, tp.name)
				}
			case !ok:
				t.Errorf("%s: no tracepoint %s", file, tp.name)
			case slices.Contains(k.other, tp.name):
				if slices.Equal(got, tp.args) {
					t.Errorf("%s: %s has the program's arguments (%s), listed as different", file, tp.name, joinArgs(got))
				}
			case !slices.Equal(got, tp.args):
				t.Errorf("%s: %s has (%s), the program reads (%s)", file, tp.name, joinArgs(got), joinArgs(tp.args))
			}
		}
	}
}
