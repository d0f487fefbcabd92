package procnet

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/linuxdiag/aod/internal/fixtures"
)

// testdata/proc/smb-conns/net/tcp and tcp6 are real tables taken with two IPv4 and
// one IPv6 connection to a listener on port 445 (lines of other sockets removed).
func TestParseRealTables(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []Conn
	}{
		{"tcp", []Conn{
			conn("127.0.0.1:445", "0.0.0.0:0", 0x0A, 48422),
			conn("127.0.0.1:37558", "127.0.0.1:445", StateEstablished, 48424),
			conn("127.0.0.1:37568", "127.0.0.1:445", StateEstablished, 48426),
			conn("127.0.0.1:445", "127.0.0.1:37568", StateEstablished, 48427),
			conn("127.0.0.1:445", "127.0.0.1:37558", StateEstablished, 48425),
		}},
		{"tcp6", []Conn{
			conn("[::1]:445", "[::]:0", 0x0A, 48423),
			conn("[::1]:48510", "[::1]:445", StateEstablished, 48428),
			conn("[::1]:445", "[::1]:48510", StateEstablished, 48429),
		}},
	} {
		data, err := os.ReadFile(fixtures.Path("proc/smb-conns/net", tc.file))
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

func conn(local, remote string, st uint8, inode uint64) Conn {
	return Conn{Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort(remote), State: st, Inode: inode}
}

// The columns after st: queues and retransmits in hex, uid and inode in decimal.
func TestParseLaterColumns(t *testing.T) {
	const header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	row := "   2: 0F02000A:C350 0A0AA8C0:01BD 01 00000080:0000001F 01:00000033 00000003  1000        0 63217 1 00000000af9b4962 20 4 30 10 -1\n"
	got, err := Parse([]byte(header+row), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Conn{Local: netip.MustParseAddrPort("10.0.2.15:50000"), Remote: netip.MustParseAddrPort("192.168.10.10:445"),
		State: StateEstablished, TxQueue: 0x80, RxQueue: 0x1F, Retransmits: 3, UID: 1000, Inode: 63217}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{
		"   2: 0F02000A:C350 0A0AA8C0:01BD 01 00000080 01:00000033 00000003  1000        0 63217\n",
		"   2: 0F02000A:C350 0A0AA8C0:01BD 01 00000080:0000001F 01:00000033 0000000X  1000        0 63217\n",
		"   2: 0F02000A:C350 0A0AA8C0:01BD 01 00000080:0000001F 01:00000033 00000003  -1        0 63217\n",
		"   2: 0F02000A:C350 0A0AA8C0:01BD 01 00000080:0000001F 01:00000033 00000003  1000        0 inode\n",
	} {
		if _, err := Parse([]byte(header+bad), nil); err == nil || !strings.Contains(err.Error(), "column") {
			t.Errorf("%q: error %v", bad, err)
		}
	}
	for st, name := range map[uint8]string{StateEstablished: "ESTAB", 0x0A: "LISTEN", 0x06: "TIME-WAIT", 0: "0x00", 0x2A: "0x2A"} {
		if got := StateName(st); got != name {
			t.Errorf("StateName(%d) = %q, want %q", st, got, name)
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
	want := conn("10.0.0.10:54321", "10.0.0.5:445", StateEstablished, 0)
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
	for _, name := range []string{fixtures.Path("proc/smb-conns/net/tcp"), fixtures.Path("proc/smb-conns/net/tcp6")} {
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
			fmt.Fprintf(&b, "%4d: %s %s %02X %08X:%08X 00:00000000 %08X %5d %8d %d\n", i, format(c.Local), format(c.Remote),
				c.State, c.TxQueue, c.RxQueue, c.Retransmits, c.UID, 0, c.Inode)
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
