package smb

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/linuxdiag/aod/internal/errno"
	"github.com/linuxdiag/aod/internal/proto"
)

func TestCommandTable(t *testing.T) {
	want := map[uint16]string{0: "SMB2_NEGOTIATE", 5: "SMB2_CREATE", 8: "SMB2_READ", 9: "SMB2_WRITE",
		14: "SMB2_QUERY_DIRECTORY", 18: "SMB2_OPLOCK_BREAK", 19: "SMB2_SERVER_TO_CLIENT_NOTIFICATION"}
	for code, name := range want {
		if got := Table.CommandName(code); got != name {
			t.Errorf("CommandName(%d) = %q, want %q", code, got, name)
		}
		if got := Command(code).String(); got != name {
			t.Errorf("Command(%d).String() = %q, want %q", code, got, name)
		}
	}
	n := 0
	for code, name := range Table.AllCommands() {
		n++
		for _, spelling := range []string{name, strings.TrimPrefix(name, Table.CommandPrefix)} {
			if got, ok := Table.LookupCommand(spelling); !ok || got != code {
				t.Errorf("LookupCommand(%q) = %d, %v; want %d", spelling, got, ok, code)
			}
		}
	}
	if n != NumCommands || Table.NumCommands() != NumCommands || Table.CommandSet().Len() != NumCommands {
		t.Errorf("AllCommands yielded %d, NumCommands %d, want %d", n, Table.NumCommands(), NumCommands)
	}
	if got := Table.CommandName(NumCommands); got != "" {
		t.Errorf("CommandName(%d) = %q, want empty", NumCommands, got)
	}
	if got := Command(NumCommands).String(); got != "SMB2_CMD_20" {
		t.Errorf("Command(%d).String() = %q, want SMB2_CMD_20", NumCommands, got)
	}
	for _, bad := range []string{"", "SMB2_", "smb2_read", "read", "SMB2_WRTE", "SMB3_READ", "SMB2_SMB2_READ"} {
		if code, ok := Table.LookupCommand(bad); ok {
			t.Errorf("LookupCommand(%q) = %d, want not found", bad, code)
		}
	}
	if got := Status(0xc0000034).String(); got != "STATUS_OBJECT_NAME_NOT_FOUND" {
		t.Errorf("Status(0xc0000034).String() = %q", got)
	}
	if got := proto.Lookup(proto.SMB); got != Table {
		t.Errorf("proto.Lookup(SMB) = %p, want the smb table %p", got, Table)
	}
}

// TestStatusTableMatchesTSV checks the committed generated table against its source,
// so an edit of ntstatus.tsv without `go generate` fails here.
func TestStatusTableMatchesTSV(t *testing.T) {
	f, err := os.Open("ntstatus.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	canonical := map[uint32]string{}
	names := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		code64, name, _ := strings.Cut(line, "\t")
		v, err := strconv.ParseUint(strings.TrimPrefix(code64, "0x"), 16, 32)
		if err != nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
		code := uint32(v)
		names++
		if got, ok := LookupStatus(name); !ok || got != code {
			t.Errorf("LookupStatus(%s) = %#x, %v; want %#x", name, got, ok, code)
		}
		if _, seen := canonical[code]; !seen {
			canonical[code] = name
		}
	}
	for code, name := range canonical {
		if got := StatusName(code); got != name {
			t.Errorf("StatusName(%#x) = %q, want %q", code, got, name)
		}
	}
	if len(statusByName) != names || len(statusByCode) != len(canonical) {
		t.Errorf("generated tables have %d names / %d codes, tsv has %d / %d: run go generate",
			len(statusByName), len(statusByCode), names, len(canonical))
	}
}

func TestStatusAliases(t *testing.T) {
	cases := []struct {
		code      uint32
		canonical string
		aliases   []string
	}{
		{0, "STATUS_SUCCESS", []string{"STATUS_WAIT_0"}},
		{0x80, "STATUS_ABANDONED", []string{"STATUS_ABANDONED_WAIT_0"}},
		{0xC0000011, "STATUS_END_OF_FILE", nil},
		{0x80000006, "STATUS_NO_MORE_FILES", nil},
		{0xC0000034, "STATUS_OBJECT_NAME_NOT_FOUND", nil},
	}
	for _, c := range cases {
		if got := StatusName(c.code); got != c.canonical {
			t.Errorf("StatusName(%#x) = %q, want %q", c.code, got, c.canonical)
		}
		for _, a := range append([]string{c.canonical}, c.aliases...) {
			if got, ok := CanonicalStatus(a); !ok || got != c.canonical {
				t.Errorf("CanonicalStatus(%s) = %q, %v; want %q", a, got, ok, c.canonical)
			}
		}
	}
	if got := StatusName(0xDEADBEEF); got != "" {
		t.Errorf("StatusName(unknown) = %q", got)
	}
	for _, bad := range []string{"", "status_end_of_file", "STATUS_END_OF_FIL", "0xC0000011"} {
		if _, ok := LookupStatus(bad); ok {
			t.Errorf("LookupStatus(%q) found", bad)
		}
	}
	n := 0
	prev := ""
	for name := range StatusNames() {
		if name <= prev {
			t.Fatalf("StatusNames not sorted: %q after %q", name, prev)
		}
		prev = name
		n++
	}
	if n != len(statusByName) {
		t.Errorf("StatusNames yielded %d", n)
	}
}

// An errno name must never be read as an NTSTATUS name or the reverse: a rule's
// track_errors takes both.
func TestErrnoAndStatusNamesDiffer(t *testing.T) {
	for name := range errno.Names() {
		if _, ok := LookupStatus(name); ok {
			t.Errorf("%s is both an errno and an NTSTATUS name", name)
		}
	}
}

// TestLookupsDoNotAllocate: the code -> name lookups run once per event, the reverse
// ones once per configured name; none may allocate.
func TestLookupsDoNotAllocate(t *testing.T) {
	checks := map[string]func(){
		"CommandName":   func() { sink = Table.CommandName(Write) },
		"Command":       func() { sink = Command(Write).String() },
		"Status":        func() { sink = Status(0xC0000034).String() },
		"StatusName":    func() { sink = StatusName(0xC0000034) },
		"LookupCommand": func() { _, _ = Table.LookupCommand("WRITE") },
		"LookupStatus":  func() { _, _ = LookupStatus("STATUS_IO_TIMEOUT") },
		"CommandSet":    func() { _ = Table.CommandSet().Without(Echo).Has(Read) },
	}
	for name, f := range checks {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s allocates %v times per call", name, n)
		}
	}
}

var sink string

func BenchmarkStatusName(b *testing.B) {
	codes := []uint32{0xC0000011, 0x80000006, 0xC0000034, 0xC00000B5, 0xDEADBEEF}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sink = StatusName(codes[i%len(codes)])
	}
}

func BenchmarkCommandName(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sink = Command(uint16(i % NumCommands)).String()
	}
}
