package smb

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestCommandTable(t *testing.T) {
	want := map[uint16]string{0: "SMB2_NEGOTIATE", 5: "SMB2_CREATE", 8: "SMB2_READ", 9: "SMB2_WRITE",
		14: "SMB2_QUERY_DIRECTORY", 18: "SMB2_OPLOCK_BREAK"}
	for code, name := range want {
		if got := CommandName(code); got != name {
			t.Errorf("CommandName(%d) = %q, want %q", code, got, name)
		}
	}
	n := 0
	for code, name := range Commands() {
		n++
		for _, spelling := range []string{name, strings.TrimPrefix(name, CommandPrefix)} {
			if got, ok := LookupCommand(spelling); !ok || got != code {
				t.Errorf("LookupCommand(%q) = %d, %v; want %d", spelling, got, ok, code)
			}
		}
	}
	if n != NumCommands {
		t.Errorf("Commands yielded %d, want %d", n, NumCommands)
	}
	if got := CommandName(NumCommands); got != "" {
		t.Errorf("CommandName(%d) = %q, want empty", NumCommands, got)
	}
	for _, bad := range []string{"", "SMB2_", "smb2_read", "read", "SMB2_WRTE", "SMB3_READ", "SMB2_SMB2_READ"} {
		if code, ok := LookupCommand(bad); ok {
			t.Errorf("LookupCommand(%q) = %d, want not found", bad, code)
		}
	}
}

func TestCommandSet(t *testing.T) {
	var s CommandSet
	s = s.With(Read).With(Write).With(Write).With(99)
	if !s.Has(Read) || !s.Has(Write) || s.Has(Create) || s.Has(99) || s.Len() != 2 {
		t.Fatalf("set %b: wrong membership", s)
	}
	s = s.Without(Read)
	var got []uint16
	for c := range s.All() {
		got = append(got, c)
	}
	if len(got) != 1 || got[0] != Write {
		t.Errorf("All() = %v, want [%d]", got, Write)
	}
	if AllCommands.Len() != NumCommands || !AllCommands.Has(OplockBreak) || AllCommands.Has(NumCommands) {
		t.Errorf("AllCommands = %b", AllCommands)
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

func TestErrno(t *testing.T) {
	for name, want := range map[string]int32{"EPERM": 1, "EIO": 5, "EAGAIN": 11, "EWOULDBLOCK": 11,
		"EACCES": 13, "ENOENT": 2, "ECONNRESET": 104, "EHOSTDOWN": 112, "EOPNOTSUPP": 95} {
		if got, ok := LookupErrno(name); !ok || got != want {
			t.Errorf("LookupErrno(%s) = %d, %v; want %d", name, got, ok, want)
		}
	}
	if got := ErrnoName(11); got != "EAGAIN" {
		t.Errorf("ErrnoName(11) = %q", got)
	}
	for _, e := range []int32{0, -5, 100000} {
		if got := ErrnoName(e); got != "" {
			t.Errorf("ErrnoName(%d) = %q, want empty", e, got)
		}
	}
	if _, ok := LookupErrno("eio"); ok {
		t.Error("LookupErrno accepted lower case")
	}
	// An errno name must never be read as an NTSTATUS name or the reverse.
	for name := range ErrnoNames() {
		if _, ok := LookupStatus(name); ok {
			t.Errorf("%s is both an errno and an NTSTATUS name", name)
		}
	}
}

// TestLookupsDoNotAllocate: the code -> name lookups run once per event, the reverse
// ones once per configured name; none may allocate.
func TestLookupsDoNotAllocate(t *testing.T) {
	LookupErrno("EIO") // build the errno index outside the measurement
	checks := map[string]func(){
		"CommandName":   func() { sink = CommandName(Write) },
		"StatusName":    func() { sink = StatusName(0xC0000034) },
		"ErrnoName":     func() { sink = ErrnoName(5) },
		"LookupCommand": func() { _, _ = LookupCommand("WRITE") },
		"LookupStatus":  func() { _, _ = LookupStatus("STATUS_IO_TIMEOUT") },
		"LookupErrno":   func() { _, _ = LookupErrno("EACCES") },
		"CommandSet":    func() { _ = AllCommands.Without(Echo).Has(Read) },
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
		sink = CommandName(uint16(i % 20))
	}
}

func BenchmarkErrnoName(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sink = ErrnoName(int32(i%130 + 1))
	}
}
