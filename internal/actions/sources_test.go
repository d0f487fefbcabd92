package actions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/fixtures"
	"github.com/linuxdiag/aod/internal/procnet"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/smb"
)

func TestFileCopiesProcFiles(t *testing.T) {
	// /proc files report size 0; the whole content must still be read.
	r, mem := run(t, File("version", "version.txt", "/proc/version", "none"), nil, 1<<20, time.Minute)
	want, _ := os.ReadFile("/proc/version")
	if r.Status != StatusOK || mem.get("version.txt") != string(want) || r.Bytes != int64(len(want)) || r.Source != "/proc/version" {
		t.Fatalf("result %+v, content %q", r, mem.get("version.txt"))
	}
}

func TestFileMissingIsASkip(t *testing.T) {
	r, _ := run(t, File("debugdata", "d.txt", "/proc/fs/aod-none/DebugData", "the cifs module is not loaded"), nil, 100, time.Minute)
	if r.Status != StatusSkipped || r.Skipped != "the cifs module is not loaded" {
		t.Fatalf("result %+v", r)
	}
}

func TestUnreadableFileIsRecorded(t *testing.T) {
	dir := t.TempDir()
	// Root reads any mode, so use sources that fail for root too: a directory
	// (EISDIR) and /proc/self/mem at offset 0 (EIO).
	for _, path := range []string{dir, "/proc/self/mem"} {
		r, _ := run(t, File("x", "x.txt", path, "none"), nil, 100, time.Minute)
		if r.Status != StatusFailed || !strings.Contains(r.Error, path) {
			t.Errorf("%s: result %+v", path, r)
		}
	}
	if os.Geteuid() != 0 {
		p := filepath.Join(dir, "secret")
		os.WriteFile(p, []byte("x"), 0)
		if r, _ := run(t, File("x", "x.txt", p, "none"), nil, 100, time.Minute); r.Status != StatusFailed {
			t.Errorf("mode 000: result %+v", r)
		}
	}
}

func TestFileDoesNotFollowSymlinks(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("do not collect"), 0o600)
	link := filepath.Join(dir, "syslog")
	os.Symlink(secret, link)
	r, mem := run(t, File("x", "x.txt", link, "none"), nil, 100, time.Minute)
	if r.Status != StatusFailed || mem.get("x.txt") != "" {
		t.Fatalf("result %+v, content %q", r, mem.get("x.txt"))
	}
}

func TestParams(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "enable_oplocks"), []byte("Y\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "CIFSMaxBufSize"), []byte("16384\n"), 0o644)
	os.Mkdir(filepath.Join(dir, "subdir"), 0o755)
	r, mem := run(t, Params("cifs_params", "p.txt", dir, "none"), nil, 1000, time.Minute)
	if r.Status != StatusOK || mem.get("p.txt") != "CIFSMaxBufSize = 16384\nenable_oplocks = Y\n" {
		t.Fatalf("result %+v, content %q", r, mem.get("p.txt"))
	}
	r, _ = run(t, Params("cifs_params", "p.txt", filepath.Join(dir, "none"), "not loaded"), nil, 1000, time.Minute)
	if r.Status != StatusSkipped || r.Skipped != "not loaded" {
		t.Fatalf("missing: %+v", r)
	}
}

func TestParseKmsg(t *testing.T) {
	rec, err := parseKmsg([]byte("6,339,5140900,-;NET: Registered protocol family 10\n SUBSYSTEM=net\n"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Level != 6 || rec.Facility != 0 || rec.Seq != 339 || rec.Time != 5140900*time.Microsecond ||
		rec.Message != "NET: Registered protocol family 10" {
		t.Fatalf("record %+v", rec)
	}
	rec, err = parseKmsg([]byte("30,1,2,c,more;user\\x0a msg"))
	if err != nil || rec.Level != 6 || rec.Facility != 3 || rec.Message != `user\x0a msg` {
		t.Fatalf("record %+v, %v", rec, err)
	}
	var b bytes.Buffer
	boot := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec.format(&b, boot)
	if b.String() != "2026-01-02T03:04:05.000002Z [    0.000002] info: user\\x0a msg\n" {
		t.Fatalf("formatted %q", b.String())
	}
	for _, bad := range []string{"", "no semicolon", "6,1;x", "x,1,2,-;m", "6,x,2,-;m", "6,1,-5,-;m", "6,1,99999999999999999999,-;m"} {
		if _, err := parseKmsg([]byte(bad)); err == nil {
			t.Errorf("parseKmsg(%q) accepted", bad)
		}
	}
}

func FuzzParseKmsg(f *testing.F) {
	f.Add([]byte("6,339,5140900,-;NET: Registered protocol family 10\n SUBSYSTEM=net\n"))
	f.Add([]byte("4,2,3,c;x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := parseKmsg(b)
		if err != nil {
			return
		}
		if rec.Level < 0 || rec.Level > 7 || rec.Time < 0 || strings.Contains(rec.Message, "\n") {
			t.Fatalf("bad record %+v from %q", rec, b)
		}
		var out bytes.Buffer
		if err := rec.format(&out, time.Unix(0, 0)); err != nil || bytes.Count(out.Bytes(), []byte("\n")) != 1 {
			t.Fatalf("format %q: %v", out.String(), err)
		}
	})
}

func TestReadKmsgRealDevice(t *testing.T) {
	if _, err := os.Stat(hostSources.kmsg); err != nil {
		t.Skipf("no %s: %v", hostSources.kmsg, err)
	}
	var all bytes.Buffer
	err := readKmsg(context.Background(), hostSources.kmsg, &all, time.Time{}, time.Now().Add(time.Hour))
	if errors.Is(err, os.ErrPermission) {
		t.Skipf("reading %s needs privileges: %v", hostSources.kmsg, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if all.Len() == 0 || !strings.Contains(all.String(), "] ") {
		t.Fatalf("the kernel log read empty or unformatted: %q", all.String())
	}
	// A window before boot selects nothing.
	var none bytes.Buffer
	if err := readKmsg(context.Background(), hostSources.kmsg, &none, time.Unix(0, 0), time.Unix(1, 0)); err != nil || none.Len() != 0 {
		t.Fatalf("window before boot: %q, %v", none.String(), err)
	}
	// Missing device: a skip.
	var skip *skipError
	if err := readKmsg(context.Background(), "/dev/aod-none", &none, time.Time{}, time.Now()); !errors.As(err, &skip) {
		t.Fatalf("missing device: %v", err)
	}
}

func sampleEvents() []event.Event {
	var e1, e2, e3 event.Event
	e1 = event.Event{Protocol: proto.SMB, Kind: event.KindSlow, Command: 8, Pid: 42, Tgid: 40, SessionID: 0xabc, TreeID: 5,
		MessageID: 77, StartNs: 1_000_000_000, EndNs: 1_250_000_000}
	copy(e1.Comm[:], "dd")
	e2 = event.Event{Protocol: proto.SMB, Kind: event.KindError, Command: 5, Status: 0xc0000034, Rc: -2, StartNs: 2_000_000_000, EndNs: 2_001_000_000}
	e3 = event.Event{Protocol: proto.SMB, Kind: event.KindReconnect, ConnID: 9, EndNs: 3_000_000_000}
	copy(e3.Server[:], "fileserver")
	return []event.Event{e1, e2, e3}
}

func TestEventsJSONLines(t *testing.T) {
	if r, _ := run(t, eventsAction(), &Env{Anomaly: &anomaly.Anomaly{Count: 5}}, 1<<20, time.Minute); r.Status != StatusSkipped {
		t.Fatalf("no events: %+v", r)
	}
	// The monotonic clock read 0 at t0.
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a := &anomaly.Anomaly{Events: sampleEvents(), EventTimeOffset: t0.UnixNano()}
	r, mem := run(t, eventsAction(), &Env{Anomaly: a}, 1<<20, time.Minute)
	if r.Status != StatusOK || len(r.Files) != 1 || r.Files[0] != "events.jsonl" {
		t.Fatalf("result %+v", r)
	}
	lines := strings.Split(strings.TrimSpace(mem.get("events.jsonl")), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines: %q", len(lines), mem.get("events.jsonl"))
	}
	var got []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		got = append(got, m)
	}
	// The receiver's log attribute names, and the times of the anomaly's clock.
	want := []map[string]any{
		{"time": "2026-03-01T12:00:01.25Z", "aod.protocol": "smb", "aod.event.kind": "slow", "smb.command": "SMB2_READ",
			"smb.operation.start_time": "2026-03-01T12:00:01Z", "smb.operation.duration": 0.25,
			"thread.name": "dd", "thread.id": 42.0, "process.pid": 40.0, "smb.session.id": "0xabc", "smb.tree.id": "0x5",
			"smb.message.id": 77.0},
		{"time": "2026-03-01T12:00:02.001Z", "aod.protocol": "smb", "aod.event.kind": "error", "smb.command": "SMB2_CREATE",
			"smb.operation.start_time": "2026-03-01T12:00:02Z", "smb.operation.duration": 0.001,
			"error.type": "STATUS_OBJECT_NAME_NOT_FOUND", "smb.status": float64(0xc0000034), "smb.rc": -2.0,
			"smb.session.id": "0x0", "smb.tree.id": "0x0", "smb.message.id": 0.0},
		{"time": "2026-03-01T12:00:03Z", "aod.protocol": "smb", "aod.event.kind": "reconnect", "server.address": "fileserver", "smb.connection.id": "0x9"},
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("line %d:\n got %v\nwant %v", i, got[i], want[i])
		}
	}
}

func TestInflight(t *testing.T) {
	r, _ := run(t, inflightAction(), &Env{}, 1<<20, time.Minute)
	if r.Status != StatusSkipped {
		t.Fatalf("no provider: %+v", r)
	}
	now := uint64(monotonicNow())
	reqs := []bpf.InFlightRequest{
		{Command: 9, StartNs: now - uint64(time.Second), Age: time.Second, MessageID: 2},
		{Command: 8, StartNs: now - uint64(time.Minute), Age: time.Minute, MessageID: 1, SessionID: 0x77, TreeID: 3, Tgid: 5, Pid: 6},
	}
	copy(reqs[1].Comm[:], "tar")
	env := &Env{Inflight: func(context.Context) ([]bpf.InFlightRequest, error) { return reqs, nil }}
	r, mem := run(t, inflightAction(), env, 1<<20, time.Minute)
	lines := strings.Split(strings.TrimSpace(mem.get("inflight.jsonl")), "\n")
	if r.Status != StatusOK || len(lines) != 2 {
		t.Fatalf("result %+v, %q", r, mem.get("inflight.jsonl"))
	}
	var first map[string]any
	json.Unmarshal([]byte(lines[0]), &first)
	start, err := time.Parse(time.RFC3339Nano, first["smb.operation.start_time"].(string))
	if first["aod.event.kind"] != "inflight" || first["smb.message.id"] != 1.0 || first["smb.command"] != "SMB2_READ" ||
		first["smb.operation.age"] != 60.0 || first["thread.name"] != "tar" || first["smb.session.id"] != "0x77" ||
		first["process.pid"] != 5.0 || first["thread.id"] != 6.0 || err != nil || time.Since(start) < time.Minute {
		t.Fatalf("longest outstanding first, with its age and start: %v (%v)", first, err)
	}
	env.Inflight = func(context.Context) ([]bpf.InFlightRequest, error) { return nil, errors.New("map gone") }
	if r, _ := run(t, inflightAction(), env, 1<<20, time.Minute); r.Status != StatusFailed || !strings.Contains(r.Error, "map gone") {
		t.Fatalf("provider error: %+v", r)
	}
}

func TestProcNetTCPFallback(t *testing.T) {
	var conns []procnet.Conn
	for _, p := range []string{fixtures.Path("proc/smb-client-mixed/net/tcp"), fixtures.Path("proc/smb-client-mixed/net/tcp6")} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if conns, err = procnet.Parse(data, conns); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	var b bytes.Buffer
	if err := writeSockets(&b, conns, []uint16{smb.Table.Port}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	// The header, then every socket on port 445 (0x01BD), and only those, decoded.
	want := []string{
		"State Recv-Q Send-Q Local Address:Port Peer Address:Port Retrans UID Inode",
		"LISTEN 0 0 127.0.0.1:445 0.0.0.0:0 0 0 63216",
		"ESTAB 0 0 127.0.0.1:43506 127.0.0.1:445 0 0 63217",
		"ESTAB 100 0 127.0.0.1:445 127.0.0.1:43506 0 0 63218",
		"ESTAB 0 128 10.0.2.15:50000 192.168.10.10:445 3 1000 63300",
	}
	for i, w := range want {
		if got := strings.Join(strings.Fields(lines[i]), " "); got != w {
			t.Errorf("line %d: %q, want %q", i, got, w)
		}
	}
	if len(lines) != 8 || strings.Contains(b.String(), ":3306") {
		t.Fatalf("want 4 IPv4 and 3 IPv6 sockets on port 445:\n%s", b.String())
	}
}

// listen445 opens a loopback connection to the SMB port, or skips. SO_REUSEPORT lets
// other test packages, run in parallel, listen on the port too.
func listen445(t *testing.T) {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
		return errors.Join(err, serr)
	}}
	l, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:445")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.1:445 (needs root): %v", err)
	}
	t.Cleanup(func() { l.Close() })
	c, err := net.Dial("tcp4", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
}

func TestSocketsWithSs(t *testing.T) {
	if _, err := LookPath("ss"); err != nil {
		t.Skip("ss not installed")
	}
	listen445(t)
	r, mem := run(t, socketsAction(), nil, 1<<20, time.Minute)
	out := mem.get("sockets.txt")
	if r.Status != StatusOK || r.Command[0] != "ss" || !strings.Contains(out, "127.0.0.1:445") || !strings.Contains(out, "rtt:") {
		t.Fatalf("result %+v\n%s", r, out)
	}
}

func TestSocketsWithoutSs(t *testing.T) {
	listen445(t)
	env := &Env{LookPath: func(n string) (string, error) { return "", exec.ErrNotFound }}
	r, mem := run(t, socketsAction(), env, 1<<20, time.Minute)
	out := mem.get("sockets.txt")
	if r.Status != StatusOK || r.Command != nil || !strings.Contains(r.Source, "/proc/net/tcp") ||
		!strings.Contains(out, "ss is not installed") || !regexp.MustCompile(`(?m)^LISTEN +\d+ +\d+ +127\.0\.0\.1:445 +0\.0\.0\.0:0 `).MatchString(out) {
		t.Fatalf("result %+v\n%s", r, out)
	}
}

func TestCifsMounts(t *testing.T) {
	m, err := readMounts(fixtures.Path("proc/smb-client-mixed/mounts"), "cifs", "smb3")
	if err != nil {
		t.Fatal(err)
	}
	got := make([][2]string, len(m))
	for i := range m {
		got[i] = [2]string{m[i].Source, m[i].Target}
	}
	want := [][2]string{{"//srv/share", "/mnt/smb"}, {"//srv/my docs", "/mnt/my docs"}}
	if !slices.Equal(got, want) {
		t.Fatalf("mounts %q", got)
	}
	for in, out := range map[string]string{`a\040b`: "a b", `a\134b`: `a\b`, `a\`: `a\`, `a\04`: `a\04`, `a\999`: `a\999`} {
		if got := unescapeMount(in); got != out {
			t.Errorf("unescape(%q) = %q, want %q", in, got, out)
		}
	}
}

func TestSmbinfoWithoutMountsIsASkip(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "mounts")
	os.WriteFile(empty, []byte("proc /proc proc rw 0 0\n"), 0o600)
	r, _ := run(t, smbinfoAction(empty), nil, 1<<20, time.Minute)
	if r.Status != StatusSkipped || r.Skipped != "no cifs mounts" {
		t.Fatalf("result %+v", r)
	}
	missing := &Env{LookPath: func(string) (string, error) { return "", exec.ErrNotFound }}
	r, _ = run(t, smbinfoAction(fixtures.Path("proc/smb-client-mixed/mounts")), missing, 1<<20, time.Minute)
	if r.Status != StatusSkipped || !strings.Contains(r.Skipped, "cifs-utils") {
		t.Fatalf("result %+v", r)
	}
}

func TestSmbinfoHangingQueriesAreKilled(t *testing.T) {
	// A fake smbinfo (this test binary, under that name) that never answers, like
	// a query to a dead server, for the two cifs mounts of the mounts file.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(t.TempDir(), "smbinfo")
	if err := os.Symlink(self, fake); err != nil {
		t.Fatal(err)
	}
	env := &Env{LookPath: func(string) (string, error) { return fake, nil }}
	// 6 s: the tenth of it the action keeps in hand must cover starting and killing four
	// processes on a loaded two-core machine, or the last query would find no time left.
	r, mem := run(t, smbinfoAction(fixtures.Path("proc/smb-client-mixed/mounts")), env, 1<<20, 6*time.Second)
	out := mem.get("smbinfo.log")
	// Every query ran, each in its share of the time, and each was killed.
	for _, q := range []string{"gettconinfo /mnt/smb", "filefsfullsizeinfo /mnt/smb", "gettconinfo /mnt/my docs", "filefsfullsizeinfo /mnt/my docs"} {
		if !strings.Contains(out, "### smbinfo "+q) {
			t.Errorf("query %q not run:\n%s", q, out)
		}
	}
	if strings.Count(out, "### timed out") != 4 || r.Status != StatusFailed || !strings.Contains(r.Error, "server not answering") {
		t.Fatalf("result %+v\n%s", r, out)
	}
}

// TestSmbinfoOlderCifsUtils runs a fake smbinfo that, like cifs-utils 7.0 (Debian
// bookworm), has no gettconinfo: that query is noted, the others are kept, and the
// action succeeds.
func TestSmbinfoOlderCifsUtils(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "cifs-utils-7.0")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(dir, "smbinfo")
	if err := os.Symlink(self, fake); err != nil {
		t.Fatal(err)
	}
	env := &Env{LookPath: func(string) (string, error) { return fake, nil }}
	r, mem := run(t, smbinfoAction(fixtures.Path("proc/smb-client-mixed/mounts")), env, 1<<20, time.Minute)
	out := mem.get("smbinfo.log")
	if r.Status != StatusOK || r.Error != "" {
		t.Fatalf("result %+v\n%s", r, out)
	}
	if strings.Count(out, "### not supported by this smbinfo") != 2 || strings.Count(out, "Total Allocation Units: 384748") != 2 {
		t.Fatalf("output:\n%s", out)
	}
}

// AODv2's quick actions write the files AODv2's did, so that scripts reading its
// bundles read aod's. The table is AODv2 2026's (USAGE.md, "Quick-action bundle
// contents"); the actions run on fixtures, with fake journalctl and smbinfo.
func TestBuiltinMembersKeepAODv2Names(t *testing.T) {
	aodv2 := map[string]string{
		"dmesg": "dmesg.log", "journalctl": "journalctl.log", "syslogs": "syslogs.log",
		"debugdata": "debug_data.log", "stats": "cifsstats.log", "mounts": "mounts.log", "smbinfo": "smbinfo.log",
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "cifs-utils-7.0") // the smbinfo that answers
	journal := t.TempDir()
	if err := os.Mkdir(bin, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"journalctl", "smbinfo"} {
		if err := os.Symlink(self, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(journal, "system.journal"), nil, 0o600)
	src := sources{cifsDir: fixtures.Path("kernel-6.12"), mounts: fixtures.Path("proc/smb-client-mixed/mounts"),
		syslogs: []string{writeLog(t, traditionalLog)}, journalDirs: []string{journal}, kmsg: "/nonexistent", zone: cet}
	env := window()
	env.LookPath = func(name string) (string, error) { return filepath.Join(bin, name), nil }
	table := src.table()
	for name, file := range aodv2 {
		r, mem := run(t, table[name], env, 1<<20, time.Minute)
		if r.Status != StatusOK || !slices.Equal(r.Files, []string{file}) || mem.get(file) == "" {
			t.Errorf("%s: result %+v, want its output in %s", name, r, file)
		}
	}
}

func TestBuiltinNames(t *testing.T) {
	want := []string{"cifs_params", "debugdata", "dmesg", "events", "inflight", "journalctl", "mounts",
		"mountstats", "nfs_rpc_stats", "nfs_tasks", "nfsstat", "rpcinfo", "showmount", "smbinfo", "sockets", "stats", "syslogs"}
	if got := Builtin().Names(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("names %v", got)
	}
	for p, names := range Always {
		for _, n := range names {
			if _, ok := Builtin()[n]; !ok {
				t.Errorf("Always[%v] names unknown action %q", p, n)
			}
		}
	}
}

// The sockets action looks at the anomaly's protocol's server port, and at every
// protocol's when the bundle is not for one protocol (an on-demand snapshot). SMB and
// NFS are both registered here (package config imports their tables).
func TestServerPorts(t *testing.T) {
	for _, c := range []struct {
		env  *Env
		want []uint16
	}{
		{&Env{Anomaly: &anomaly.Anomaly{Protocol: "smb"}}, []uint16{445}},
		{&Env{Anomaly: &anomaly.Anomaly{Protocol: "nfs"}}, []uint16{2049}},
		{&Env{Anomaly: &anomaly.Anomaly{Protocol: "aod"}}, []uint16{445, 2049}},
		{&Env{}, []uint16{445, 2049}},
		{nil, []uint16{445, 2049}},
	} {
		if got := c.env.serverPorts(); !slices.Equal(got, c.want) {
			t.Errorf("%+v: ports %v, want %v", c.env, got, c.want)
		}
	}
}
