package e2e

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linuxdiag/aod/internal/cifsproc"
	"github.com/linuxdiag/aod/internal/fixtures"
)

func readTrace(t *testing.T, file string) *trace {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := parseTrace(data)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// Real output of Debian 6.1 (tab after the event name) and 6.12 (a second done for one
// request) parses into the events and requests it holds.
func TestParseTraceRealKernels(t *testing.T) {
	tr := readTrace(t, fixtures.Path("kernel-6.1/trace-baseline.txt"))
	if tr.Written != 26 || tr.InBuffer != 26 || len(tr.Events) != 26 {
		t.Fatalf("6.1: written %d, in buffer %d, events %d; want 26 each", tr.Written, tr.InBuffer, len(tr.Events))
	}
	if n := tr.count("smb3_cmd_enter"); n != 14 {
		t.Errorf("6.1: %d enters, want 14", n)
	}
	first := tr.Events[0]
	if first.Task != "smbvm-default-t" || first.PID != 184 || first.Time != 11.939030 || first.Fields["cmd"] != "5" || first.Fields["mid"] != "314" {
		t.Errorf("6.1 first event = %+v", first)
	}
	p, err := tr.requests()
	if err != nil {
		t.Fatal(err)
	}
	reqs, unpaired := p.Requests, p.Unpaired
	if len(reqs) != 14 || len(unpaired) != 0 {
		t.Errorf("6.1: %d requests, %d unpaired completions; want 14 and 0", len(reqs), len(unpaired))
	}
	failed := map[uint64]uint32{}
	for _, r := range reqs {
		if r.Failed {
			failed[r.MID] = r.Status
		}
	}
	// A READ at the end of the file and a lookup of a missing name.
	if len(failed) != 2 || failed[339] != 0xc0000011 || failed[355] != 0xc0000034 {
		t.Errorf("6.1: failed requests (mid: status) %x, want 339: c0000011, 355: c0000034", failed)
	}

	tr = readTrace(t, fixtures.Path("kernel-6.12/trace-delay.txt"))
	if p, err = tr.requests(); err != nil {
		t.Fatal(err)
	}
	reqs, unpaired = p.Requests, p.Unpaired
	if len(unpaired) != 1 || unpaired[0].Fields["mid"] != "366" || unpaired[0].Name != "smb3_cmd_done" {
		t.Fatalf("6.12: unpaired completions %+v, want the second done of mid 366", unpaired)
	}
	for _, r := range reqs {
		if r.MID == 366 && (r.End != 14.633803 || r.Command != 17) {
			t.Errorf("6.12: mid 366 = %+v, want SET_INFO ending at its first done", r)
		}
		if r.MID == 369 && (!r.Failed || r.Status != 0xc0000034) {
			t.Errorf("6.12: mid 369 = %+v, want failed with STATUS_OBJECT_NAME_NOT_FOUND", r)
		}
	}
	if got := tr.countByCommand("smb3_cmd_enter")[6]; got != 7 {
		t.Errorf("6.12: %d CLOSE enters, want 7", got)
	}
}

func TestParseTraceRejectsGarbage(t *testing.T) {
	for name, in := range map[string]string{
		"no header":   " cat-1 [000] ..... 1.000000: smb3_cmd_enter: sid=0x1 tid=0x2 cmd=5 mid=3\n",
		"not a trace": "# entries-in-buffer/entries-written: 1/1   #P:2\nhello\n",
	} {
		if _, err := parseTrace([]byte(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	tr, err := parseTrace([]byte("# entries-in-buffer/entries-written: 1/1   #P:2\n cat-1 [000] ..... 1.000000: smb3_cmd_done: sid=0x1 tid=0x2 mid=3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.requests(); err == nil || !strings.Contains(err.Error(), "lacks") {
		t.Errorf("completion without cmd: err = %v", err)
	}
}

func TestPhases(t *testing.T) {
	ph, err := parsePhases([]byte("clean 10.5 1795664358.5\ndelayed 20.25 1795664368.25\n"))
	if err != nil {
		t.Fatal(err)
	}
	for at, want := range map[float64]string{1: "", 10.5: "clean", 20.2: "clean", 99: "delayed"} {
		if got := phaseAt(ph, at); got != want {
			t.Errorf("phaseAt(%v) = %q, want %q", at, got, want)
		}
	}
	if got := wallTime(ph, 15).Sub(time.Unix(1795664363, 0)); got < -time.Millisecond || got > time.Millisecond {
		t.Errorf("wallTime(15) is %v off", got)
	}
	for _, bad := range []string{"clean 10.5\n", "clean x 1\n", "clean 1 x\n", "b 2 1\na 1 1\n"} {
		if _, err := parsePhases([]byte(bad)); err == nil {
			t.Errorf("parsePhases(%q): no error", bad)
		}
	}
}

func FuzzParseE2ETrace(f *testing.F) {
	for _, file := range []string{fixtures.Path("kernel-6.1/trace-baseline.txt"), fixtures.Path("kernel-6.12/trace-delay.txt"),
		fixtures.Path("kernel-6.1/nfs/trace-rpc.txt"), fixtures.Path("kernel-6.12/nfs/trace-rpc.txt")} {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := parseTrace(data)
		if err != nil {
			return
		}
		if rpcs, err := tr.rpcCompletions(); err == nil {
			var n int64
			for _, c := range rpcs {
				n += c
			}
			if int(n) != tr.count("rpc_stats_latency") {
				t.Fatalf("%d RPCs by program and procedure out of %d rpc_stats_latency events", n, tr.count("rpc_stats_latency"))
			}
		}
		p, err := tr.requests()
		if err != nil {
			return
		}
		completions := tr.count("smb3_cmd_done") + tr.count("smb3_cmd_err")
		paired := 0
		for _, r := range p.Requests {
			if r.completed() {
				paired++
			}
		}
		if paired+len(p.Unpaired) != completions {
			t.Fatalf("%d paired + %d unpaired completions out of %d", paired, len(p.Unpaired), completions)
		}
		if len(p.Requests) != tr.count("smb3_cmd_enter") {
			t.Fatalf("%d requests from %d enters", len(p.Requests), tr.count("smb3_cmd_enter"))
		}
		for _, r := range p.Requests {
			if f := r.ChainedBehind; f != nil && (r.completed() || !f.Failed || f.Rc >= 0 || f.Task != r.Task || f.ReadBy != f.Task || f.Start > r.Start) {
				t.Fatalf("%+v chained behind %+v", *r, *f)
			}
		}
	})
}

// The first leg of a session setup goes out with session id 0 and its answer carries the
// new session's id: they are one request.
func TestSessionSetupPairsAcrossTheNewSessionID(t *testing.T) {
	tr, err := parseTrace([]byte(`# entries-in-buffer/entries-written: 3/3   #P:2
 cifsd-129 [001] ..... 74.0: smb3_cmd_enter: sid=0x0 tid=0x0 cmd=1 mid=1
 cifsd-129 [001] ..... 74.1: smb3_cmd_err: sid=0x8a2 tid=0x0 cmd=1 mid=1 status=0xc0000016 rc=-5
 cifsd-129 [001] ..... 74.2: smb3_cmd_done: sid=0x8a2 tid=0x0 cmd=5 mid=1
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := tr.requests()
	if err != nil {
		t.Fatal(err)
	}
	reqs, unpaired := p.Requests, p.Unpaired
	if len(reqs) != 1 || reqs[0].End != 74.1 || reqs[0].Status != 0xc0000016 {
		t.Errorf("requests %+v, want the session setup ending with its error", reqs)
	}
	if len(unpaired) != 1 || unpaired[0].Fields["cmd"] != "5" {
		t.Errorf("unpaired %+v, want only the CREATE completion (only SESSION_SETUP changes session id)", unpaired)
	}
}

// After a reconnect message ids start again: a request aborted by the reconnect is superseded
// by the new one with the same identity, which gets the completion.
func TestReusedIdentitySupersedes(t *testing.T) {
	tr, err := parseTrace([]byte(`# entries-in-buffer/entries-written: 3/3   #P:2
 kworker/1:0-28 [001] ..... 106.29: smb3_cmd_enter: sid=0x0 tid=0x0 cmd=0 mid=0
 kworker/1:0-28 [001] ..... 109.76: smb3_cmd_enter: sid=0x0 tid=0x0 cmd=0 mid=0
 kworker/1:0-28 [001] ..... 109.85: smb3_cmd_done: sid=0x0 tid=0x0 cmd=0 mid=0
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := tr.requests()
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Requests) != 2 || !p.Requests[0].Superseded || p.Requests[0].completed() ||
		p.Requests[1].Superseded || p.Requests[1].End != 109.85 {
		t.Errorf("requests %+v %+v, want the first superseded and open, the second completed", *p.Requests[0], *p.Requests[1])
	}
}

// The per-command table of real Stats files (STATS2) gives the request counts.
func TestCommandCounts(t *testing.T) {
	for kernel, want := range map[string]map[uint16]int64{
		"6.1":  {0: 1, 1: 2, 5: 55, 6: 54, 8: 69, 9: 65, 16: 50, 17: 5, 18: 0},
		"6.12": {0: 1, 1: 2, 5: 58, 6: 57, 8: 69, 9: 65, 16: 50, 17: 5, 18: 0},
	} {
		dir := t.TempDir() // an evidence folder, as readStats reads it
		if err := os.Symlink(fixtures.Path("kernel-"+kernel+"/Stats"), filepath.Join(dir, "Stats."+kernel)); err != nil {
			t.Fatal(err)
		}
		s, err := readStats(dir, kernel)
		if err != nil {
			t.Fatalf("%s: %v", kernel, err)
		}
		got, err := commandCounts(s)
		if err != nil {
			t.Fatalf("%s: %v", kernel, err)
		}
		for c, n := range want {
			if got[c] != n {
				t.Errorf("%s: command %d counted %d, want %d", kernel, c, got[c], n)
			}
		}
	}
	if _, err := commandCounts(&cifsproc.Stats{}); err == nil {
		t.Error("Stats without a server: no error")
	}
	if _, err := commandCounts(&cifsproc.Stats{Servers: []cifsproc.ServerStats{{}}}); err == nil {
		t.Error("Stats without the STATS2 table: no error")
	}
}

func TestMedian(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median of 3 = %v", got)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median of 4 = %v", got)
	}
}

// A guest that panicked on a stale int3 (6.12 under multi-threaded TCG, during boot) shows
// both oopses, each with its registers and call trace, and the panic; a clean run shows none.
func TestKernelFaultsRealConsoles(t *testing.T) {
	data, err := os.ReadFile("testdata/console-int3-6.12.txt")
	if err != nil {
		t.Fatal(err)
	}
	faults := kernelFaults(data)
	if len(faults) != 2 {
		t.Fatalf("%d fault reports, want 2:\n%s", len(faults), strings.Join(faults, "\n--\n"))
	}
	first := strings.Split(faults[0], "\n")
	if !strings.HasSuffix(first[0], "Oops: int3: 0000 [#1] PREEMPT SMP NOPTI") || !strings.Contains(faults[0], "RIP: 0010:sched_clock_tick+0x5/0xb0") ||
		!strings.Contains(first[len(first)-1], "---[ end trace 0000000000000000 ]---") {
		t.Errorf("first report:\n%s", faults[0])
	}
	if !strings.Contains(faults[1], "Oops: int3: 0000 [#2]") || !strings.Contains(faults[1], "Kernel panic - not syncing: Fatal exception in interrupt") {
		t.Errorf("second report:\n%s", faults[1])
	}

	if data, err = os.ReadFile("testdata/console-6.12.txt"); err != nil {
		t.Fatal(err)
	}
	if faults := kernelFaults(data); faults != nil {
		t.Errorf("a clean console shows faults: %q", faults)
	}
}

func TestKernelFaultsHeaders(t *testing.T) {
	for _, tc := range []struct {
		line  string
		fault bool
	}{
		{"[   12.345678] int3: 0000 [#1] PREEMPT SMP NOPTI", true}, // 6.1's die() header
		{"[    3.998155] Oops: 0002 [#1] PREEMPT SMP NOPTI", true},
		{"[    1.000000] ------------[ cut here ]------------", true},
		{"[    1.000000] WARNING: CPU: 1 PID: 42 at kernel/bpf/trampoline.c:10 f+0x1/0x2", true},
		{"[    1.000000] BUG: kernel NULL pointer dereference, address: 0000000000000000", true},
		{"[   30.000000] watchdog: BUG: soft lockup - CPU#0 stuck for 26s! [swapper/0:0]", true},
		{"[   30.000000] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:", true},
		{"[  240.000000] INFO: task smbd:123 blocked for more than 120 seconds.", true},
		{"[    4.001467] Kernel panic - not syncing: Fatal exception in interrupt", true},
		{"[   62.399865] hrtimer: interrupt took 14342553 ns", false},
		{"BUG: a program's own output on the console has no printk time", false},
		{"e2e guest: failed: Oops: 0000 [#1]", false},
	} {
		if got := kernelFaults([]byte(tc.line+"\n")) != nil; got != tc.fault {
			t.Errorf("%q: fault %v, want %v", tc.line, got, tc.fault)
		}
	}
}

// The members after a compound's failed member never complete: they are chained behind it.
// An asynchronous request's failure, read by cifsd, chains nothing, nor does a failure
// mapped to no error.
func TestChainedBehindAFailedMember(t *testing.T) {
	tr, err := parseTrace([]byte(`# entries-in-buffer/entries-written: 20/20   #P:2
 cat-423 [000] ..... 13.7915: smb3_cmd_enter: sid=0x93 tid=0x53 cmd=8 mid=343
 cat-423 [000] ..... 13.7916: smb3_cmd_enter: sid=0x93 tid=0x53 cmd=8 mid=344
 cifsd-240 [001] ..... 13.7929: smb3_cmd_err: sid=0x93 tid=0x53 cmd=8 mid=343 status=0xc0000011 rc=-61
 stat-424 [000] ..... 13.8197: smb3_cmd_enter: sid=0x93 tid=0x53 cmd=5 mid=359
 stat-424 [000] ..... 13.8198: smb3_cmd_enter: sid=0x93 tid=0x53 cmd=16 mid=360
 stat-424 [000] ..... 13.8198: smb3_cmd_enter: sid=0x93 tid=0x53 cmd=6 mid=361
 stat-424 [000] ..... 13.8249: smb3_cmd_err: sid=0x93 tid=0x53 cmd=5 mid=359 status=0xc0000034 rc=-2
 rmdir-425 [001] ..... 13.9001: smb3_cmd_enter: sid=0x93 tid=0x53 cmd=5 mid=362
 rmdir-425 [001] ..... 13.9002: smb3_cmd_enter: sid=0x93 tid=0x53 cmd=17 mid=363
 rmdir-425 [001] ..... 13.9003: smb3_cmd_enter: sid=0x93 tid=0x53 cmd=6 mid=364
 rmdir-425 [001] ..... 13.9101: smb3_cmd_done: sid=0x93 tid=0x53 cmd=5 mid=362
 rmdir-425 [001] ..... 13.9102: smb3_cmd_err: sid=0x93 tid=0x53 cmd=17 mid=363 status=0xc0000101 rc=-39
 rmdir-425 [001] ..... 13.9201: smb3_cmd_enter: sid=0x93 tid=0x53 cmd=5 mid=365
 rmdir-425 [001] ..... 13.9202: smb3_cmd_enter: sid=0x93 tid=0x53 cmd=16 mid=366
 rmdir-425 [001] ..... 13.9301: smb3_cmd_err: sid=0x93 tid=0x53 cmd=16 mid=366 status=0x80000005 rc=0
 rmdir-425 [001] ..... 13.9302: smb3_cmd_done: sid=0x93 tid=0x53 cmd=5 mid=365
 rmdir-425 [001] ..... 13.9401: smb3_cmd_enter: sid=0x93 tid=0x53 cmd=16 mid=367
 rmdir-425 [001] ..... 13.9402: smb3_cmd_enter: sid=0x93 tid=0x53 cmd=6 mid=368
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := tr.requests()
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]uint64{360: 359, 361: 359, 364: 363} // mid -> the failed member's
	for _, r := range p.Requests {
		switch behind, chained := want[r.MID]; {
		case chained && (r.ChainedBehind == nil || r.ChainedBehind.MID != behind):
			t.Errorf("mid %d chained behind %+v, want mid %d", r.MID, r.ChainedBehind, behind)
		case !chained && r.ChainedBehind != nil:
			t.Errorf("mid %d chained behind mid %d, want not chained", r.MID, r.ChainedBehind.MID)
		}
	}
	if r := p.Requests[6]; r.MID != 363 || r.Rc != -39 || r.Task != 425 || r.ReadBy != 425 {
		t.Errorf("rmdir's SET_INFO %+v, want rc -39 sent and read by 425", *r)
	}
}

// rpc_stats_latency of Debian 6.1 and 6.12 counts, per procedure, what mountstats counted
// over the same workload (testdata/kernel-*/nfs/README.md): v3 151 and v4.2 172 RPCs on
// 6.1, 139 and 181 on 6.12.
func TestRPCCompletionsRealKernels(t *testing.T) {
	for kernel, want := range map[string]map[string]int64{"6.1": {"nfsv3": 151, "nfsv4": 172}, "6.12": {"nfsv3": 139, "nfsv4": 181}} {
		n, err := readTrace(t, fixtures.Path("kernel-"+kernel+"/nfs/trace-rpc.txt")).rpcCompletions()
		if err != nil {
			t.Fatalf("%s: %v", kernel, err)
		}
		got := map[string]int64{}
		for op, c := range n {
			got[op.Program] += c
		}
		for prog, w := range want {
			if got[prog] != w {
				t.Errorf("%s: %d %s RPCs, want %d (all: %v)", kernel, got[prog], prog, w, n)
			}
		}
	}
	if n, _ := readTrace(t, fixtures.Path("kernel-6.1/nfs/trace-rpc.txt")).rpcCompletions(); n[rpcOp{"nfsv3", "MKDIR"}] == 0 {
		t.Errorf("6.1: no nfsv3 MKDIR in %v", n)
	}
}

func TestRPCCompletionsMalformed(t *testing.T) {
	tr, err := parseTrace([]byte("# entries-in-buffer/entries-written: 1/1\n" +
		"           mkdir-197     [001] .....    12.326665: rpc_stats_latency: task:00000006@00000006 backlog=837 rtt=1842 execute=3107\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.rpcCompletions(); err == nil || !strings.Contains(err.Error(), "no program and procedure") {
		t.Errorf("err = %v", err)
	}
}

func TestParseFormatsRealKernel(t *testing.T) {
	data, err := os.ReadFile(fixtures.Path("kernel-6.1/cifs-formats.txt"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := parseFormats(data)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]string{
		"smb3_reconnect":    {"currmid", "conn_id", "hostname"},
		"smb3_connect_err":  {"hostname", "conn_id", "dst_addr", "rc"},
		"smb3_cmd_err":      {"tid", "sesid", "cmd", "mid", "status", "rc"},
		"smb3_connect_done": {"hostname", "conn_id", "dst_addr"},
	} {
		if !slices.Equal(f[name], want) {
			t.Errorf("%s: fields %v, want %v", name, f[name], want)
		}
	}
	if _, err := parseFormats([]byte("\tfield:int rc;\toffset:8;\tsize:4;\n")); err == nil {
		t.Error("a field before any tracepoint name: no error")
	}
}

func TestSMBConnections(t *testing.T) {
	for file, want := range map[string][]uint16{
		"proc/smb-conns/net/tcp":     {37558, 37568},
		"proc/smb-reconnect/net/tcp": {37568, 37576}, // 37558 is in TIME_WAIT
	} {
		data, err := os.ReadFile(fixtures.Path(file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := smbConnections(data)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: local ports %v, want %v", file, got, want)
		}
	}
}

// On 5.10, without the per-command table, the per-share counters are the premise: over
// the e2e baseline, each command's "sent" delta on the share equals smb3_cmd_enter on its
// tree.
func TestShareCounts510(t *testing.T) {
	dir := t.TempDir()
	for name, file := range map[string]string{"Stats.before": "kernel-5.10/Stats.before", "Stats.after": "kernel-5.10/Stats"} {
		if err := os.Symlink(fixtures.Path(file), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	before, err := readStats(dir, "before")
	if err != nil {
		t.Fatal(err)
	}
	after, err := readStats(dir, "after")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := commandCounts(after); !errors.Is(err, errNoCommandTable) {
		t.Errorf("5.10 Stats: commandCounts error %v, want errNoCommandTable", err)
	}
	dd, err := os.ReadFile(fixtures.Path("kernel-5.10/DebugData"))
	if err != nil {
		t.Fatal(err)
	}
	tids, err := shareTIDs("share", dd)
	if err != nil || !slices.Equal(tids, []uint32{0x629c5aca}) {
		t.Fatalf("share tids %#x, %v", tids, err)
	}
	tr := readTrace(t, fixtures.Path("kernel-5.10/trace-baseline.txt"))
	rows, err := shareCounts(before, after, tr, "share", tids)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"SMBs": 443, "Creates": 138, "Closes": 138, "Flushes": 21, "Reads": 24, "Writes": 21, "QueryDirectories": 12, "QueryInfos": 36, "SetInfos": 53, "Locks": 0}
	for _, r := range rows {
		if r.Stats != r.Trace {
			t.Errorf("%s: Stats %d, trace %d", r.Label, r.Stats, r.Trace)
		}
		if w, ok := want[r.Label]; ok && r.Stats != w {
			t.Errorf("%s: %d, want %d", r.Label, r.Stats, w)
		}
		delete(want, r.Label)
	}
	if len(want) > 0 {
		t.Errorf("no rows for %v", want)
	}
	// Another tree's requests are not the share's.
	if rows, _ := shareCounts(before, after, tr, "share", []uint32{1}); rows[0].Trace != 0 {
		t.Errorf("tid 1: %d requests", rows[0].Trace)
	}
	if _, err := shareCounts(before, after, tr, "nothere", tids); err == nil {
		t.Error("a share Stats does not list: no error")
	}
}
