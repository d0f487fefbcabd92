package procnet

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
)

// testdata/tcp and tcp6 are real tables taken with two IPv4 and one IPv6 connection
// to a listener on port 445 (lines of other sockets removed).
func TestParseRealTables(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []Conn
	}{
		{"tcp", []Conn{
			{netip.MustParseAddrPort("127.0.0.1:445"), netip.MustParseAddrPort("0.0.0.0:0"), 0x0A},
			{netip.MustParseAddrPort("127.0.0.1:37558"), netip.MustParseAddrPort("127.0.0.1:445"), StateEstablished},
			{netip.MustParseAddrPort("127.0.0.1:37568"), netip.MustParseAddrPort("127.0.0.1:445"), StateEstablished},
			{netip.MustParseAddrPort("127.0.0.1:445"), netip.MustParseAddrPort("127.0.0.1:37568"), StateEstablished},
			{netip.MustParseAddrPort("127.0.0.1:445"), netip.MustParseAddrPort("127.0.0.1:37558"), StateEstablished},
		}},
		{"tcp6", []Conn{
			{netip.MustParseAddrPort("[::1]:445"), netip.MustParseAddrPort("[::]:0"), 0x0A},
			{netip.MustParseAddrPort("[::1]:48510"), netip.MustParseAddrPort("[::1]:445"), StateEstablished},
			{netip.MustParseAddrPort("[::1]:445"), netip.MustParseAddrPort("[::1]:48510"), StateEstablished},
		}},
	} {
		data, err := os.ReadFile("testdata/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse(data, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if len(got) != len(tc.want) {
			t.Fatalf("%s: got %d rows %v, want %d", tc.file, len(got), got, len(tc.want))
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s row %d: got %v, want %v", tc.file, i, got[i], tc.want[i])
			}
		}
	}
}

func TestParseV4MappedAndAppend(t *testing.T) {
	table := "  sl  local_address                         remote_address                        st\n" +
		"   0: 0000000000000000FFFF00000A00000A:D431 0000000000000000FFFF00000500000A:01BD 01 0\n"
	prior := []Conn{{State: 7}}
	got, err := Parse([]byte(table), prior)
	if err != nil {
		t.Fatal(err)
	}
	want := Conn{netip.MustParseAddrPort("10.0.0.10:54321"), netip.MustParseAddrPort("10.0.0.5:445"), StateEstablished}
	if len(got) != 2 || got[0] != prior[0] || got[1] != want {
		t.Fatalf("got %v, want prior row then %v", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	const header = "  sl  local_address rem_address   st tx_queue\n"
	for _, tc := range []struct{ name, in, want string }{
		{"no header", "   0: 0100007F:01BD 00000000:0000 0A\n", "line 1: not a TCP table header"},
		{"short row", header + "   0: 0100007F:01BD\n", "line 2: not a TCP table row"},
		{"bad address", header + "   0: 0100007G:01BD 00000000:0000 0A\n", "line 2: local address"},
		{"odd address length", header + "   0: 0100007F:01BD 000000:0000 0A\n", "line 2: remote address"},
		{"bad port", header + "   0: 0100007F:1BD 00000000:0000 0A\n", "line 2: local address"},
		{"bad state", header + "   0: 0100007F:01BD 00000000:0000 XY\n", "line 2: state"},
		{"bad later row", header + "   0: 0100007F:01BD 00000000:0000 0A\n\n   1: junk\n", "line 4:"},
	} {
		_, err := Parse([]byte(tc.in), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	if got, err := Parse([]byte(" \n"), nil); err != nil || len(got) != 0 {
		t.Errorf("blank table: got %v, %v; want no rows, no error", got, err)
	}
}

func FuzzParseProcNetTCP(f *testing.F) {
	for _, name := range []string{"testdata/tcp", "testdata/tcp6"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("sl a b st\n 0: 00000000:0000 00000000:0000 01\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		conns, err := Parse(data, nil)
		if err != nil {
			return
		}
		for _, c := range conns {
			if !c.Local.IsValid() || !c.Remote.IsValid() {
				t.Fatalf("parsed an invalid address from %q: %v", data, c)
			}
		}
		// Each row, printed back the way the kernel prints it, parses to the same row.
		var b strings.Builder
		b.WriteString("  sl  local_address rem_address   st\n")
		for i, c := range conns {
			fmt.Fprintf(&b, "%4d: %s %s %02X\n", i, format(c.Local), format(c.Remote), c.State)
		}
		again, err := Parse([]byte(b.String()), nil)
		if err != nil {
			t.Fatalf("re-parsing %q: %v", b.String(), err)
		}
		if !slices.Equal(again, conns) {
			t.Fatalf("round trip changed rows: %v, want %v", again, conns)
		}
	})
}

// format prints an address the way the kernel's tcp4/tcp6 seq_show does.
func format(ap netip.AddrPort) string {
	raw := ap.Addr().AsSlice()
	var b strings.Builder
	for i := 0; i < len(raw); i += 4 {
		fmt.Fprintf(&b, "%08X", binary.NativeEndian.Uint32(raw[i:]))
	}
	fmt.Fprintf(&b, ":%04X", ap.Port())
	return b.String()
}
