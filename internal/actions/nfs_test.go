package actions

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linuxdiag/aod/internal/fixtures"
)

// deadNFSServer is the address of proc/nfs-client/mounts' server that never answers.
const deadNFSServer = "198.51.100.9"

// fakeNFSTool acts as nfsstat, rpcinfo or showmount when the test binary is run under
// that name, and reports whether it did. Asked about deadNFSServer, it hangs like a
// call to a server that is down.
func fakeNFSTool(name string, args []string) bool {
	switch name {
	case "nfsstat", "rpcinfo", "showmount":
	default:
		return false
	}
	if slices.Contains(args, deadNFSServer) {
		time.Sleep(time.Hour)
	}
	fmt.Printf("%s answered %s\n", name, strings.Join(args, " "))
	return true
}

// fakeTools returns an Env whose programs are this test binary under their names.
func fakeTools(t *testing.T, names ...string) *Env {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, n := range names {
		if err := os.Symlink(self, filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	return &Env{LookPath: func(name string) (string, error) {
		if !slices.Contains(names, name) {
			return "", exec.ErrNotFound
		}
		return filepath.Join(dir, name), nil
	}}
}

// nfsSources are the host's sources with the NFS ones pointed at fixtures.
func nfsSources() sources {
	s := hostSources
	s.mounts = fixtures.Path("proc/nfs-client/mounts")
	s.mountstats = fixtures.Path("kernel-6.12/nfs/mountstats.after")
	s.nfsRPC = fixtures.Path("proc/nfs-client/net/rpc/nfs")
	return s
}

// durations are the run times of the status lines, which the tests cannot know.
var durations = regexp.MustCompile(`(?m)^(### .*) in \d+(\.\d+)?m?s$`)

func TestNFSServers(t *testing.T) {
	mounts, err := readMounts(fixtures.Path("proc/nfs-client/mounts"), nfsFSTypes...)
	if err != nil {
		t.Fatal(err)
	}
	// Two entries of one server are one, addr= wins over the device's name, the IPv6
	// address has no brackets, and the cifs mount's addr= is not an NFS server's.
	want := []nfsServer{
		{"192.0.2.10", []string{"filer1:/export/home on /home", "filer1:/export/my data on /mnt/my data"}},
		{deadNFSServer, []string{"dead.example.com:/srv on /mnt/dead"}},
		{"2001:db8::5", []string{"[2001:db8::5]:/ on /mnt/v6"}},
	}
	got := nfsServers(mounts)
	if len(got) != len(want) {
		t.Fatalf("servers %q", got)
	}
	for i := range want {
		if got[i].Host != want[i].Host || !slices.Equal(got[i].Mounts, want[i].Mounts) {
			t.Errorf("server %d: %q, want %q", i, got[i], want[i])
		}
	}
	// Without addr= the device's host is used; a host that would be read as an
	// option, or none, is left out.
	got = nfsServers([]mount{{Source: "nas:/x", Target: "/x", Options: "rw,vers=3"},
		{Source: "-p:/y", Target: "/y", Options: "rw"}, {Source: "/z", Target: "/z", Options: "rw"}})
	if len(got) != 1 || got[0].Host != "nas" {
		t.Fatalf("servers %q", got)
	}
}

func TestNFSProcFiles(t *testing.T) {
	table := nfsSources().table()
	for name, c := range map[string]struct{ member, fixture string }{
		NameMountstats: {"mountstats.log", "kernel-6.12/nfs/mountstats.after"},
		NameNFSRPC:     {"nfs_rpc_stats.log", "proc/nfs-client/net/rpc/nfs"},
	} {
		r, mem := run(t, table[name], nil, 1<<20, time.Minute)
		want, err := os.ReadFile(fixtures.Path(c.fixture))
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != StatusOK || !slices.Equal(r.Files, []string{c.member}) || mem.get(c.member) != string(want) {
			t.Errorf("%s: result %+v, %d bytes of %s, want %d", name, r, len(mem.get(c.member)), c.member, len(want))
		}
	}
	s := nfsSources()
	s.nfsRPC = "/proc/aod-none/rpc/nfs"
	if r, _ := run(t, s.table()[NameNFSRPC], nil, 1<<20, time.Minute); r.Status != StatusSkipped ||
		r.Skipped != "the nfs module is not loaded (no /proc/aod-none/rpc/nfs)" {
		t.Fatalf("no nfs module: %+v", r)
	}
}

func TestNfsstat(t *testing.T) {
	env := fakeTools(t, "nfsstat")
	r, mem := run(t, nfsSources().table()[NameNfsstat], env, 1<<20, time.Minute)
	want := "### nfsstat -c\nnfsstat answered -c\n### ok\n\n### nfsstat -m\nnfsstat answered -m\n### ok\n\n"
	if got := durations.ReplaceAllString(mem.get("nfsstat.log"), "$1"); r.Status != StatusOK || got != want {
		t.Fatalf("result %+v\n%s", r, got)
	}
	// Not installed, or no nfs module: a skip that says so.
	if r, _ := run(t, nfsSources().table()[NameNfsstat], fakeTools(t), 1<<20, time.Minute); r.Status != StatusSkipped ||
		!strings.Contains(r.Skipped, "nfsstat is not installed") {
		t.Fatalf("not installed: %+v", r)
	}
	s := nfsSources()
	s.nfsRPC = "/proc/aod-none/rpc/nfs"
	if r, _ := run(t, s.table()[NameNfsstat], env, 1<<20, time.Minute); r.Status != StatusSkipped ||
		!strings.Contains(r.Skipped, "nfs module is not loaded") {
		t.Fatalf("no nfs module: %+v", r)
	}
}

// TestNFSServerQueries asks each server of the mounts fixture with rpcinfo and
// showmount; one never answers, and is killed in its share of the time while the
// server after it is still asked.
func TestNFSServerQueries(t *testing.T) {
	env := fakeTools(t, "rpcinfo", "showmount")
	for _, c := range []struct{ name, member, argv string }{
		{NameRpcinfo, "rpcinfo.log", "rpcinfo -p"},
		{NameShowmount, "showmount.log", "showmount -e"},
	} {
		// 6 s: the dead server's share must leave the last one time to start on a
		// loaded two-core machine.
		r, mem := run(t, nfsSources().table()[c.name], env, 1<<20, 6*time.Second)
		tool, opt, _ := strings.Cut(c.argv, " ")
		want := fmt.Sprintf("### %[1]s 192.0.2.10 (filer1:/export/home on /home, filer1:/export/my data on /mnt/my data)\n"+
			"%[2]s answered %[3]s 192.0.2.10\n### ok\n\n"+
			"### %[1]s 198.51.100.9 (dead.example.com:/srv on /mnt/dead)\n### timed out\n\n"+
			"### %[1]s 2001:db8::5 ([2001:db8::5]:/ on /mnt/v6)\n"+
			"%[2]s answered %[3]s 2001:db8::5\n### ok\n\n", c.argv, tool, opt)
		got := durations.ReplaceAllString(mem.get(c.member), "$1")
		if got != want || !slices.Equal(r.Files, []string{c.member}) {
			t.Errorf("%s: got\n%s\nwant\n%s", c.name, got, want)
		}
		if r.Status != StatusFailed || r.Error != c.argv+" 198.51.100.9: timed out (server not answering?)" ||
			strings.Join(r.Command, " ") != c.argv+" <each nfs server>" {
			t.Errorf("%s: result %+v", c.name, r)
		}
	}
}

func TestNFSServerQueriesSkip(t *testing.T) {
	s := nfsSources()
	s.mounts = fixtures.Path("proc/smb-client-mixed/mounts") // srv:/export, nfs4
	r, _ := run(t, s.table()[NameRpcinfo], fakeTools(t), 1<<20, time.Minute)
	if r.Status != StatusSkipped || r.Skipped != "rpcinfo is not installed (package rpcbind)" {
		t.Fatalf("not installed: %+v", r)
	}
	none := filepath.Join(t.TempDir(), "mounts")
	os.WriteFile(none, []byte("//srv/share /mnt/smb cifs rw,addr=192.0.2.77 0 0\n"), 0o600)
	s.mounts = none
	r, _ = run(t, s.table()[NameShowmount], fakeTools(t, "showmount"), 1<<20, time.Minute)
	if r.Status != StatusSkipped || r.Skipped != "no nfs mounts" {
		t.Fatalf("no nfs mounts: %+v", r)
	}
}

func FuzzNFSServers(f *testing.F) {
	data, err := os.ReadFile(fixtures.Path("proc/nfs-client/mounts"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte("[::1 /x nfs4 addr= 0 0\n-h:/ /y nfs rw,addr=-p 0 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		mounts, err := mountsOf(bytes.NewReader(b), nfsFSTypes...)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		n := 0
		for _, s := range nfsServers(mounts) {
			if s.Host == "" || strings.HasPrefix(s.Host, "-") || seen[s.Host] || len(s.Mounts) == 0 {
				t.Fatalf("server %q of %q", s, b)
			}
			seen[s.Host] = true
			n += len(s.Mounts)
		}
		if n > len(mounts) {
			t.Fatalf("%d mounts of servers from %d nfs mounts", n, len(mounts))
		}
	})
}

// nfs_tasks copies each RPC client's debugfs tasks and its transport's info, in client id
// order; a client without a transport has no info; a client whose tasks cannot be read is
// recorded and the others still copied; without the folder (debugfs not mounted) it is a
// skip that says so.
func TestNFSTasks(t *testing.T) {
	dir := t.TempDir()
	xprtInfo := "netid: tcp\naddr:  127.0.0.1\nport:  2049\nstate: 0x1a\n"
	tasks := "  312 0880      0 0x6 0x61c9e1c8     6000 nfs4_read_call_ops [nfsv4] nfsv4 READ a:call_status [sunrpc] q:xprt_pending\n"
	for _, f := range []struct{ path, body string }{
		{"rpc_xprt/1/info", xprtInfo},
		{"rpc_clnt/2/tasks", ""},
		{"rpc_clnt/10/tasks", tasks},
		{"rpc_clnt/3/nothing", ""}, // a client whose tasks cannot be read
	} {
		p := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// As in debugfs: a client's xprt is a link to its transport's folder.
	for _, c := range []string{"2", "10"} {
		if err := os.Symlink("../../rpc_xprt/1", filepath.Join(dir, "rpc_clnt", c, "xprt")); err != nil {
			t.Fatal(err)
		}
	}
	s := nfsSources()
	s.rpcClients = filepath.Join(dir, "rpc_clnt")
	r, mem := run(t, s.table()[NameNFSTasks], nil, 1<<20, time.Minute)
	got := mem.get(MemberNFSTasks)
	want := "== rpc_clnt 2\n" + xprtInfo +
		"== rpc_clnt 3\n<open " + filepath.Join(s.rpcClients, "3", "tasks") + ": no such file or directory>\n" +
		"== rpc_clnt 10\n" + tasks + xprtInfo
	if got != want {
		t.Errorf("nfs_tasks.log:\n%s\nwant:\n%s", got, want)
	}
	if r.Status != StatusFailed || !strings.Contains(r.Error, "3/tasks: no such file") || !slices.Equal(r.Files, []string{MemberNFSTasks}) {
		t.Errorf("result %+v: want failed naming the missing tasks file, with the member kept", r)
	}
	s.rpcClients = filepath.Join(dir, "none")
	if r, _ := run(t, s.table()[NameNFSTasks], nil, 1<<20, time.Minute); r.Status != StatusSkipped || !strings.Contains(r.Skipped, "debugfs is not mounted") {
		t.Errorf("no debugfs: %+v", r)
	}
}
