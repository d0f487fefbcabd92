package cifsproc

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/linuxdiag/aod/internal/fixtures"
)

// readTestdata reads a file of the fixture tree, named by its slash-separated path
// in it.
func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixtures.Path(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseDebugDataRealKernels(t *testing.T) {
	for _, tc := range []struct {
		file      string
		session   uint64
		ipcTID    uint32
		shareTID  uint32
		sessionOn string
	}{
		{"kernel-6.1/DebugData", 0xce760632, 0xf2c00e4, 0xe9710cc7, "127.0.0.1"},
		{"kernel-6.12/DebugData", 0x936c11ff, 0x5022a236, 0x53dfe4a, "127.0.0.1"},
		// 5.10: the server's and its session's line are one, at the margin.
		{"kernel-5.10/DebugData", 0xe16d6bfe, 0xd8c2aeb8, 0x629c5aca, "127.0.0.1"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			dd, err := ParseDebugData(readTestdata(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			wantShares := []Share{
				{SessionID: tc.session, TreeID: tc.ipcTID, Server: "127.0.0.1", Share: "IPC$", Address: "127.0.0.1", IPC: true},
				{SessionID: tc.session, TreeID: tc.shareTID, Server: "127.0.0.1", Share: "share", Address: "127.0.0.1"},
			}
			if !reflect.DeepEqual(dd.Shares, wantShares) {
				t.Errorf("shares:\n got %+v\nwant %+v", dd.Shares, wantShares)
			}
			wantSessions := []Session{{SessionID: tc.session, Server: tc.sessionOn, Address: "127.0.0.1"}}
			if !reflect.DeepEqual(dd.Sessions, wantSessions) {
				t.Errorf("sessions: got %+v want %+v", dd.Sessions, wantSessions)
			}
			if got := dd.Shares[1].UNC(); got != `\\127.0.0.1\share` {
				t.Errorf("UNC = %q", got)
			}
		})
	}
}

func TestParseDebugDataMultipleServers(t *testing.T) {
	dd, err := ParseDebugData(readTestdata(t, "proc/cifs-multi/fs/cifs/DebugData"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Share{
		{SessionID: 0x1000000000abcdef, TreeID: 1, Server: "fs1.example.com", Share: "IPC$", Address: "192.0.2.10", IPC: true},
		{SessionID: 0x1000000000abcdef, TreeID: 5, Server: "fs1.example.com", Share: "projects", Address: "192.0.2.10"},
		{SessionID: 0x1000000000abcdef, TreeID: 9, Server: "fs1.example.com", Share: "home", Address: "192.0.2.10"},
		{SessionID: 0x44, TreeID: 0xfffffffe, Server: "198.51.100.7", Share: "scratch", Address: "198.51.100.7"},
	}
	if !reflect.DeepEqual(dd.Shares, want) {
		t.Errorf("shares:\n got %+v\nwant %+v", dd.Shares, want)
	}
	wantSes := []Session{
		{SessionID: 0x1000000000abcdef, Server: "fs1.example.com", Address: "192.0.2.10"},
		{SessionID: 0x44, Server: "198.51.100.7", Address: "198.51.100.7"},
	}
	if !reflect.DeepEqual(dd.Sessions, wantSes) {
		t.Errorf("sessions: got %+v want %+v", dd.Sessions, wantSes)
	}
}

func TestParseDebugDataNoServers(t *testing.T) {
	// What a client with cifs loaded and nothing mounted prints.
	in := "Display Internal CIFS Data Structures for Debugging\n" +
		"---------------------------------------------------\n" +
		"CIFS Version 2.51\nServers: \n\t[NONE]\n"
	dd, err := ParseDebugData([]byte(in))
	if err != nil || len(dd.Shares) != 0 || len(dd.Sessions) != 0 {
		t.Fatalf("got %+v, %v", dd, err)
	}
}

func TestParseDebugDataErrors(t *testing.T) {
	if _, err := ParseDebugData([]byte("Resources in use\nCIFS Session: 1\n")); !errors.Is(err, ErrNotDebugData) {
		t.Errorf("Stats text: err = %v, want ErrNotDebugData", err)
	}

	// A share whose tid line is cut off, next to a complete one: the complete one is
	// kept and the broken one named in the error.
	full := string(readTestdata(t, "kernel-6.12/DebugData"))
	broken := strings.Replace(full, "\ttid: 0x5022a236", "\tnot a tid line", 1)
	dd, err := ParseDebugData([]byte(broken))
	if err == nil || !strings.Contains(err.Error(), `\\127.0.0.1\IPC$: no tid line`) {
		t.Errorf("err = %v, want it to name the IPC share", err)
	}
	if len(dd.Shares) != 1 || dd.Shares[0].Share != "share" {
		t.Errorf("shares = %+v, want the intact one", dd.Shares)
	}

	badTid := strings.Replace(full, "tid: 0x53dfe4a", "tid: 0xzz", 1)
	if _, err := ParseDebugData([]byte(badTid)); err == nil || !strings.Contains(err.Error(), `bad tid "0xzz"`) {
		t.Errorf("bad tid: err = %v", err)
	}

	noSes := strings.Replace(full, "SessionId: 0x936c11ff", "", 1)
	dd, err = ParseDebugData([]byte(noSes))
	if err == nil || len(dd.Shares) != 0 {
		t.Errorf("missing SessionId: shares %+v err %v, want none and an error", dd.Shares, err)
	}
}

func TestSplitUNC(t *testing.T) {
	for _, tc := range []struct {
		in, server, share string
		ok                bool
	}{
		{`\\srv\share`, "srv", "share", true},
		{`\\srv\share\sub\dir`, "srv", "share", true},
		{`\\srv`, "", "", false},
		{`\\srv\`, "", "", false},
		{`\\\share`, "", "", false},
		{`srv\share`, "", "", false},
	} {
		server, share, ok := SplitUNC(tc.in)
		if server != tc.server || share != tc.share || ok != tc.ok {
			t.Errorf("SplitUNC(%q) = %q, %q, %v", tc.in, server, share, ok)
		}
	}
}

func FuzzParseDebugData(f *testing.F) {
	for _, name := range []string{"kernel-5.10/DebugData", "kernel-6.1/DebugData", "kernel-6.12/DebugData", "proc/cifs-multi/fs/cifs/DebugData"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte("Servers: \n1) ConnectionId: 0x1\n\t1) Address: x\n\t1) \\\\a\\b Mounts\n\ttid:\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dd, err := ParseDebugData(data)
		if dd == nil {
			t.Fatalf("nil result (err %v)", err)
		}
		for _, s := range dd.Shares {
			if s.Server == "" || s.Share == "" {
				t.Fatalf("share with an empty name: %+v", s)
			}
		}
	})
}
