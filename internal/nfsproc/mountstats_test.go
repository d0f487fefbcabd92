package nfsproc

import (
	"bytes"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/linuxdiag/aod/internal/fixtures"
)

func parseFixture(t testing.TB, name string) []Mount {
	t.Helper()
	f, err := os.Open(fixtures.Path(name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ms, err := Parse(name, f)
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return ms
}

func mountOn(t *testing.T, ms []Mount, dir string) *Mount {
	t.Helper()
	for i := range ms {
		if ms[i].MountPoint == dir {
			return &ms[i]
		}
	}
	t.Fatalf("no mount on %s in %d mounts", dir, len(ms))
	return nil
}

func opNamed(t *testing.T, m *Mount, name string) Op {
	t.Helper()
	for _, op := range m.Ops {
		if op.Name == name {
			return op
		}
	}
	t.Fatalf("%s has no op %s", m.MountPoint, name)
	return Op{}
}

func TestParseKernel61(t *testing.T) {
	ms := parseFixture(t, "kernel-6.1/nfs/mountstats.after")
	if len(ms) != 2 {
		t.Fatalf("%d mounts, want the 2 NFS ones (sysfs, 9p, nfsd, rpc_pipefs skipped)", len(ms))
	}

	v4 := mountOn(t, ms, "/mnt/n4")
	if v4.Line != 14 || v4.Device != "127.0.0.1:/" || v4.Server != "127.0.0.1" || v4.Export != "/" ||
		v4.FSType != "nfs4" || v4.StatsVers != "1.1" || v4.Age != 4*time.Second {
		t.Errorf("v4 mount header: %+v", v4)
	}
	if v, ok := v4.Option("vers"); !ok || v != "4.2" {
		t.Errorf("vers = %q, %v", v, ok)
	}
	if v, ok := v4.Option("clientaddr"); !ok || v != "127.0.0.1" {
		t.Errorf("clientaddr = %q, %v", v, ok)
	}
	if v, ok := v4.Option("hard"); !ok || v != "" {
		t.Errorf("hard = %q, %v", v, ok)
	}
	if _, ok := v4.Option("addr"); ok {
		t.Error("6.1 prints no addr= for this v4 mount")
	}
	wantEvents := []uint64{4, 253, 1, 11, 4, 22, 440, 20, 0, 0, 0, 30, 8, 0, 60, 0, 0, 40, 0, 0, 20, 0, 0, 0, 0, 0, 0}
	if !reflect.DeepEqual(v4.Events, wantEvents) {
		t.Errorf("events = %v", v4.Events)
	}
	if !reflect.DeepEqual(v4.Bytes, []uint64{71, 71, 0, 0, 0, 71, 0, 20}) {
		t.Errorf("bytes = %v", v4.Bytes)
	}
	if v4.RPCStatsVers != "1.1" || v4.Program != 100003 || v4.Version != 4 || v4.ProgramName != "nfs" {
		t.Errorf("RPC iostats line: %q %d/%d %q", v4.RPCStatsVers, v4.Program, v4.Version, v4.ProgramName)
	}
	wantX := []Transport{{Proto: "tcp", Connects: 2, Sends: 186, Receives: 186, RequestsSum: 186, HasSlots: true, MaxSlots: 2}}
	if !reflect.DeepEqual(v4.Transports, wantX) {
		t.Errorf("transports = %+v", v4.Transports)
	}
	if len(v4.Ops) != 69 || v4.Ops[0].Name != "NULL" || v4.Ops[68].Name != "READ_PLUS" {
		t.Errorf("v4: %d ops, first %q", len(v4.Ops), v4.Ops[0].Name)
	}
	want := Op{Name: "LOOKUP", Ops: 11, Transmissions: 11, BytesSent: 1984, BytesReceived: 1056,
		Queue: 2 * time.Millisecond, RTT: 16 * time.Millisecond, Execute: 23 * time.Millisecond, HasErrors: true, Errors: 11}
	if got := opNamed(t, v4, "LOOKUP"); got != want {
		t.Errorf("v4 LOOKUP = %+v, want %+v", got, want)
	}
	if got := opNamed(t, v4, "SETCLIENTID_CONFIRM"); got != (Op{Name: "SETCLIENTID_CONFIRM", HasErrors: true}) {
		t.Errorf("a name longer than the %%12s column: %+v", got)
	}

	v3 := mountOn(t, ms, "/mnt/n3")
	if v3.Device != "127.0.0.1:/srv/nfs" || v3.Export != "/srv/nfs" || v3.FSType != "nfs" || v3.Version != 3 || v3.Age != 3*time.Second {
		t.Errorf("v3 mount header: %+v", v3)
	}
	if v, _ := v3.Option("mountport"); v != "46465" {
		t.Errorf("mountport = %q", v)
	}
	wantX = []Transport{{Proto: "tcp", Port: 887, Binds: 1, Connects: 2, Sends: 181, Receives: 181, RequestsSum: 181, HasSlots: true, MaxSlots: 2}}
	if !reflect.DeepEqual(v3.Transports, wantX) {
		t.Errorf("transports = %+v", v3.Transports)
	}
	want = Op{Name: "GETATTR", Ops: 26, Transmissions: 26, BytesSent: 2472, BytesReceived: 2912,
		Queue: time.Millisecond, RTT: 17 * time.Millisecond, Execute: 23 * time.Millisecond, HasErrors: true}
	if got := opNamed(t, v3, "GETATTR"); got != want {
		t.Errorf("v3 GETATTR = %+v, want %+v", got, want)
	}
	if len(v3.Ops) != 22 || v3.Ops[21].Name != "COMMIT" {
		t.Errorf("v3: %d ops", len(v3.Ops))
	}
}

// TestParsePerOpDeltas checks every kernel's files against the counts their README gives:
// the per-op deltas over the workload, which the trace's rpc_stats_latency events match.
func TestParsePerOpDeltas(t *testing.T) {
	for _, tc := range []struct {
		kernel     string
		v3, v4     uint64
		v4Ops      int
		v3Op       string
		v3OpBefore Op
		v3OpAfter  Op
	}{
		{kernel: "kernel-6.1", v3: 151, v4: 172, v4Ops: 69},
		{kernel: "kernel-6.12", v3: 139, v4: 181, v4Ops: 69},
		// 7.3 adds ZERO_RANGE and OFFLOAD_STATUS.
		{kernel: "kernel-7.3", v3: 139, v4: 133, v4Ops: 71},
	} {
		t.Run(tc.kernel, func(t *testing.T) {
			before := parseFixture(t, tc.kernel+"/nfs/mountstats.before")
			after := parseFixture(t, tc.kernel+"/nfs/mountstats.after")
			sum := func(m *Mount) (n uint64) {
				for _, op := range m.Ops {
					n += op.Ops
				}
				return n
			}
			for _, c := range []struct {
				dir  string
				want uint64
			}{{"/mnt/n3", tc.v3}, {"/mnt/n4", tc.v4}} {
				b, a := mountOn(t, before, c.dir), mountOn(t, after, c.dir)
				if got := sum(a) - sum(b); got != c.want {
					t.Errorf("%s: per-op delta %d, README says %d", c.dir, got, c.want)
				}
				if len(a.Ops) != len(b.Ops) || len(a.Transports) != 1 || len(a.Events) != len(EventNames) || len(a.Bytes) != len(ByteNames) {
					t.Errorf("%s: %d/%d ops, %d transports, %d events, %d bytes", c.dir, len(b.Ops), len(a.Ops), len(a.Transports), len(a.Events), len(a.Bytes))
				}
			}
			if n := len(mountOn(t, after, "/mnt/n4").Ops); n != tc.v4Ops {
				t.Errorf("v4 mount lists %d ops, want %d", n, tc.v4Ops)
			}
		})
	}
	// 7.3's v3 mount: SETATTR 1 1 0 124 144 0 1 1 0 after the workload.
	v3 := mountOn(t, parseFixture(t, "kernel-7.3/nfs/mountstats.after"), "/mnt/n3")
	want := Op{Name: "SETATTR", Ops: 1, Transmissions: 1, BytesSent: 124, BytesReceived: 144, RTT: time.Millisecond, Execute: time.Millisecond, HasErrors: true}
	if got := opNamed(t, v3, "SETATTR"); got != want {
		t.Errorf("7.3 v3 SETATTR = %+v", got)
	}
	if x := v3.Transports[0]; x.Port != 767 || x.Sends != 170 {
		t.Errorf("7.3 v3 xprt = %+v", x)
	}
}

func TestParseVariants(t *testing.T) {
	in := "device [fe80::1%eth0]:/ex\\040port mounted on /mnt/a\\040b with fstype nfs statvers=1.0\n" +
		"\topts:\trw,vers=3,proto=udp\n" +
		"\tevents:\t1 2 3\n" +
		"\tRPC iostats version: 1.0  p/v: 100003/3 (nfs)\n" +
		"\txprt:\tudp 700 1 10 9 0 10 0\n" +
		"\txprt:\trdma 0 0 1 5 0 10 10 0 10 0 4 5 6 7 8 9 1 2 3 4 5 6 7 8\n" +
		"\txprt:\tlocal 1 2 3 -1 4 5 6 7 8 9 10 11\n" +
		"\txprt:\tquic 1 2\n" +
		"\tfsc:\tsomething new\n" +
		"\tper-op statistics\n" +
		"\t        NULL: 1 2 3 4 5 6 7 8\n" +
		"\t     GETATTR: 1 1 0 10 20 1 2 3 0 99 100\n" +
		"\tlater:\tnot an op 1 2\n" +
		"\n" +
		"device srv:/x mounted on /y with fstype ext4\n" +
		"no device mounted on /z with fstype nfs\n" +
		"device h:/e mounted on /n with fstype nfs4\n"
	ms, err := Parse("test", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 {
		t.Fatalf("%d mounts, want 2", len(ms))
	}
	m := ms[0]
	if m.Server != "fe80::1%eth0" || m.Export != "/ex port" || m.MountPoint != "/mnt/a b" || m.StatsVers != "1.0" {
		t.Errorf("header: server %q export %q dir %q statvers %q", m.Server, m.Export, m.MountPoint, m.StatsVers)
	}
	want := []Transport{
		{Proto: "udp", Port: 700, Binds: 1, Sends: 10, Receives: 9, RequestsSum: 10},
		{Proto: "rdma", Connects: 1, Sends: 10, Receives: 10, RequestsSum: 10},
		{Proto: "local", Binds: 1, Connects: 2, Sends: 4, Receives: 5, BadXIDs: 6, RequestsSum: 7, BacklogSum: 8, HasSlots: true, MaxSlots: 9, SendingSum: 10, PendingSum: 11},
	}
	if !reflect.DeepEqual(m.Transports, want) {
		t.Errorf("transports:\n got %+v\nwant %+v", m.Transports, want)
	}
	wantOps := []Op{
		{Name: "NULL", Ops: 1, Transmissions: 2, MajorTimeouts: 3, BytesSent: 4, BytesReceived: 5, Queue: 6 * time.Millisecond, RTT: 7 * time.Millisecond, Execute: 8 * time.Millisecond},
		{Name: "GETATTR", Ops: 1, Transmissions: 1, BytesSent: 10, BytesReceived: 20, Queue: time.Millisecond, RTT: 2 * time.Millisecond, Execute: 3 * time.Millisecond, HasErrors: true},
	}
	if !reflect.DeepEqual(m.Ops, wantOps) {
		t.Errorf("ops:\n got %+v\nwant %+v", m.Ops, wantOps)
	}
	if ms[1].Server != "h" || ms[1].Export != "/e" || ms[1].StatsVers != "" {
		t.Errorf("second mount %+v", ms[1])
	}
}

func TestParseMalformed(t *testing.T) {
	in := "device h:/e mounted on /n with fstype nfs4 statvers=1.1\n" +
		"\tage:\tx\n" +
		"\tevents:\t1 2 -3\n" +
		"\txprt:\ttcp 1 2 3\n" +
		"\txprt:\ttcp 1 2 3 4 5 6 7 8 9 1x\n" +
		"\tRPC iostats version: 1.1  p/v: 100003/four (nfs)\n" +
		"\tper-op statistics\n" +
		"\t        NULL: 1 2 3 4 5 6 7 99999999999999999999999\n" +
		"\t        READ: 1 2 3\n" +
		"\t       WRITE: 1 2 3 4 5 6 7 8 9\n"
	ms, err := Parse("/proc/self/mountstats", strings.NewReader(in))
	for _, want := range []string{
		`/proc/self/mountstats:2:7: age: not an unsigned decimal counter; got "x"`,
		`/proc/self/mountstats:3:14: events: not an unsigned decimal counter; got "-3"`,
		`/proc/self/mountstats:4:17: xprt: tcp: want at least 10 numbers, have 3`,
		`/proc/self/mountstats:5:30: xprt: not an unsigned decimal counter; got "1x"`,
		`/proc/self/mountstats:6:33: RPC iostats version: p/v: want program/version; got "100003/four"`,
		`/proc/self/mountstats:8:30: per-op NULL: not an unsigned decimal counter; got "99999999999999999999999"`,
		`/proc/self/mountstats:9:21: per-op READ: want at least 8 numbers, have 3`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nlacks %s", err, want)
		}
	}
	if len(ms) != 1 {
		t.Fatalf("%d mounts", len(ms))
	}
	m := ms[0]
	if m.Age != 0 || m.Events != nil || len(m.Transports) != 0 || m.Program != 0 {
		t.Errorf("malformed lines left values: %+v", m)
	}
	if len(m.Ops) != 1 || m.Ops[0].Name != "WRITE" || m.Ops[0].Errors != 9 {
		t.Errorf("ops %+v, want only the well-formed WRITE", m.Ops)
	}
}

// endless yields empty lines forever.
type endless struct{}

func (endless) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = '\n'
	}
	return len(b), nil
}

func TestParseBounded(t *testing.T) {
	ms, err := Parse("big", endless{})
	if !errors.Is(err, ErrTooLarge) || ms != nil {
		t.Errorf("endless input: %d mounts, error %v", len(ms), err)
	}
	long := "device h:/e mounted on /n with fstype nfs4\n\topts:\t" + strings.Repeat("x", MaxLineBytes) + "\n"
	ms, err = Parse("long", strings.NewReader(long))
	if err == nil || !strings.Contains(err.Error(), "long:2: line longer than") || ms != nil {
		t.Errorf("long line: %d mounts, error %v", len(ms), err)
	}
	// Exactly MaxBytes is accepted.
	exact := io.MultiReader(strings.NewReader("device h:/e mounted on /n with fstype nfs4\n"),
		bytes.NewReader(bytes.Repeat([]byte("\n"), MaxBytes-len("device h:/e mounted on /n with fstype nfs4\n"))))
	if ms, err := Parse("exact", exact); err != nil || len(ms) != 1 {
		t.Errorf("input of MaxBytes: %d mounts, error %v", len(ms), err)
	}
}

func FuzzParse(f *testing.F) {
	for _, k := range []string{"kernel-6.1", "kernel-6.12", "kernel-7.3"} {
		b, err := os.ReadFile(fixtures.Path(k + "/nfs/mountstats.after"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("device a:/b mounted on /c\\ with fstype nfs\n\txprt:\tlocal 1\n\tper-op statistics\n\tX: 1 2 3 4 5 6 7 8 9\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := Parse("fuzz", bytes.NewReader(data))
		if err != nil && ms == nil {
			return
		}
		for _, m := range ms {
			if m.FSType != "nfs" && m.FSType != "nfs4" {
				t.Fatalf("mount of type %q", m.FSType)
			}
			if len(m.Ops) > bytes.Count(data, []byte("\n"))+1 {
				t.Fatalf("%d ops from %d lines", len(m.Ops), bytes.Count(data, []byte("\n"))+1)
			}
		}
	})
}

// BenchmarkParse measures Parse on /proc/self/mountstats of a host with 50 NFS mounts
// (the 6.1 file's two mounts, 25 times over).
func BenchmarkParse(b *testing.B) {
	raw, err := os.ReadFile(fixtures.Path("kernel-6.1/nfs/mountstats.after"))
	if err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat(raw, 25)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for range b.N {
		ms, err := Parse("bench", bytes.NewReader(data))
		if err != nil || len(ms) != 50 {
			b.Fatalf("%d mounts, %v", len(ms), err)
		}
	}
}
