package e2e

// Readers of the evidence the guest scenarios leave in the run folder: tracefs output of the
// cifs tracepoints, the phase marks, /proc/fs/cifs/Stats (through the receiver's parser), and
// the faults the kernel reported on the console.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/linuxdiag/aod/internal/cifsproc"
	"github.com/linuxdiag/aod/internal/procnet"
	"github.com/linuxdiag/aod/internal/smb"
)

// traceEvent is one line of the tracefs `trace` file.
type traceEvent struct {
	Task   string
	PID    int
	Time   float64           // seconds on the trace clock (CLOCK_MONOTONIC in the guest)
	Name   string            // e.g. "smb3_cmd_enter"
	Text   string            // what follows the name
	Fields map[string]string // the KEY=VALUE words of Text
}

// field returns a numeric field (decimal or 0x hex), and whether it was there and parsed.
func (e traceEvent) field(name string) (uint64, bool) {
	v, ok := e.Fields[name]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 0, 64)
	return n, err == nil
}

// trace is a parsed `trace` file.
type trace struct {
	Events []traceEvent
	// Written and InBuffer are the header's entries-written and entries-in-buffer: they
	// differ when the ring buffer overwrote events.
	Written, InBuffer int
}

var (
	traceLine   = regexp.MustCompile(`^\s*(.+)-(\d+)\s+\[\d+\]\s+\S+\s+(\d+\.\d+):\s+(\w+):\s*(.*)$`)
	traceHeader = regexp.MustCompile(`^# entries-in-buffer/entries-written: (\d+)/(\d+)`)
)

// parseTrace reads tracefs output. Comment lines other than the entries header are skipped;
// any other line that is not an event is an error.
func parseTrace(data []byte) (*trace, error) {
	t := &trace{}
	sawHeader := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			if m := traceHeader.FindStringSubmatch(line); m != nil {
				t.InBuffer, _ = strconv.Atoi(m[1])
				t.Written, _ = strconv.Atoi(m[2])
				sawHeader = true
			}
			continue
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		m := traceLine.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("trace line %d: not an event: %q", n, line)
		}
		pid, err := strconv.Atoi(m[2])
		if err != nil {
			return nil, fmt.Errorf("trace line %d: pid: %w", n, err)
		}
		ts, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			return nil, fmt.Errorf("trace line %d: timestamp: %w", n, err)
		}
		e := traceEvent{Task: strings.TrimSpace(m[1]), PID: pid, Time: ts, Name: m[4], Text: m[5], Fields: map[string]string{}}
		for _, kv := range strings.Fields(m[5]) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				e.Fields[k] = v
			}
		}
		t.Events = append(t.Events, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !sawHeader {
		return nil, errors.New("trace: no entries-in-buffer/entries-written header")
	}
	return t, nil
}

// rpcOp is an RPC program and procedure as rpc_stats_latency names them: "nfsv3" or
// "nfsv4" (the program name and version), "GETATTR".
type rpcOp struct{ Program, Procedure string }

// rpc is one RPC the client completed, as rpc_stats_latency reports it (one per RPC
// mountstats counts).
type rpc struct {
	At      float64 // trace time of the completion
	Op      rpcOp
	Execute float64 // seconds from the RPC's start to its completion (the trace prints µs)
}

// rpcs returns the trace's rpc_stats_latency events of the NFS client in order. The
// guest's NFS server calls back into its client too (program nfs4_cbv1: CB_RECALL_ANY every
// few seconds on 7.x, ...): those are the server's RPCs, which no mount counts and aod's
// programs leave out.
func (t *trace) rpcs() ([]rpc, error) {
	var out []rpc
	for _, e := range t.Events {
		if e.Name != "rpc_stats_latency" {
			continue
		}
		// task:ID@CLIENT xid=0x... PROGRAM PROCEDURE backlog=... rtt=... execute=...
		w := strings.Fields(e.Text)
		if len(w) < 4 || !strings.HasPrefix(w[0], "task:") || !strings.HasPrefix(w[1], "xid=") || strings.Contains(w[2], "=") || strings.Contains(w[3], "=") {
			return nil, fmt.Errorf("rpc_stats_latency at %.6f: no program and procedure in %q", e.Time, e.Text)
		}
		us, ok := e.field("execute")
		if !ok {
			return nil, fmt.Errorf("rpc_stats_latency at %.6f: no execute time in %q", e.Time, e.Text)
		}
		if w[2] == "nfs4_cbv1" {
			continue
		}
		out = append(out, rpc{At: e.Time, Op: rpcOp{w[2], w[3]}, Execute: float64(us) / 1e6})
	}
	return out, nil
}

// request is one SMB request of a trace, identified by session and message id.
type request struct {
	Session, MID uint64
	Command      uint16
	Start, End   float64 // End is meaningful only when Completed
	Status       uint32  // NTSTATUS of a failed completion, else 0
	Completed    bool    // a completion was seen (a trace clock may read 0.0)
	Failed       bool
	// Superseded: a later request took the same session and message id before this one
	// completed (after a reconnect, message ids start again from 0).
	Superseded bool
	Task       int   // thread that sent it (smb3_cmd_enter)
	ReadBy     int   // thread that read its completion: the sender for a synchronous request
	Rc         int64 // smb3_cmd_err: the -errno the status maps to
	// ChainedBehind, for a request that never completed, is the failed request of its
	// compound it was chained behind (see pairing).
	ChainedBehind *request
}

// pairing is the outcome of matching a trace's starts with its completions.
type pairing struct {
	Requests []*request
	// Unpaired are the completions that had no start: repeated completions of a completed
	// request (6.12 completes some twice) or completions of requests started before the trace.
	Unpaired []traceEvent
}

// requests pairs the smb3_cmd_enter events of a trace with their first completion
// (smb3_cmd_done or smb3_cmd_err), and finds the requests chained behind a failed member
// of their compound.
//
// A compound is what one task sends in a row: compound_send_recv allocates its members'
// mids one after another (smb3_cmd_enter each), sends them, and only then reads their
// results, in order, in that task. It stops at the first result that maps to an error
// (rc < 0): the members after it get neither smb3_cmd_done nor smb3_cmd_err, and are
// freed unread. So a request that never completed is chained behind f when f was entered
// before it by the same task, with no completion read by that task in between (one
// compound), and f failed with rc < 0, read by that task. Asynchronous requests (READ,
// WRITE), which a task may also send in a row, have their results read by cifsd: their
// failures end nothing.
func (t *trace) requests() (*pairing, error) {
	p := &pairing{}
	open := map[[2]uint64]*request{}
	done := map[[2]uint64]bool{}
	// run[task] is what the task entered since it last read a completion.
	run := map[int][]*request{}
	reading := map[int]bool{}
	compound := map[*request][]*request{}
	for _, e := range t.Events {
		if !strings.HasPrefix(e.Name, "smb3_cmd_") {
			continue
		}
		sid, ok1 := e.field("sid")
		mid, ok2 := e.field("mid")
		cmd, ok3 := e.field("cmd")
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("%s at %.6f lacks sid, mid or cmd: %v", e.Name, e.Time, e.Fields)
		}
		key := [2]uint64{sid, mid}
		switch e.Name {
		case "smb3_cmd_enter":
			if prev := open[key]; prev != nil && !done[key] {
				prev.Superseded = true
			}
			r := &request{Session: sid, MID: mid, Command: uint16(cmd), Start: e.Time, Task: e.PID}
			open[key] = r
			delete(done, key)
			p.Requests = append(p.Requests, r)
			if reading[e.PID] {
				run[e.PID], reading[e.PID] = nil, false
			}
			run[e.PID] = append(run[e.PID], r)
			compound[r] = run[e.PID]
		case "smb3_cmd_done", "smb3_cmd_err":
			reading[e.PID] = true
			r := open[key]
			if r == nil && uint16(cmd) == smb.SessionSetup {
				// The first leg of a session setup is sent with session id 0 and answered
				// with the new session's id.
				key = [2]uint64{0, mid}
				r = open[key]
			}
			if r == nil || done[key] {
				p.Unpaired = append(p.Unpaired, e)
				continue
			}
			done[key] = true
			r.End, r.Completed, r.ReadBy = e.Time, true, e.PID
			if e.Name == "smb3_cmd_err" {
				st, _ := e.field("status")
				rc, err := strconv.ParseInt(e.Fields["rc"], 10, 64)
				if err != nil {
					return nil, fmt.Errorf("smb3_cmd_err at %.6f has no rc: %v", e.Time, e.Fields)
				}
				r.Status, r.Failed, r.Rc = uint32(st), true, rc
			}
		}
	}
	for _, r := range p.Requests {
		if r.Completed {
			continue
		}
		for _, f := range compound[r] {
			if f == r {
				break
			}
			// Sent no earlier than the failure: a compound's members go out together, after
			// their first (a trace in time order always holds this; garbage may not).
			if f.Failed && f.Rc < 0 && f.ReadBy == f.Task && f.Start <= r.Start {
				r.ChainedBehind = f
				break
			}
		}
	}
	return p, nil
}

// completed reports whether the request's completion was seen.
func (r *request) completed() bool { return r.Completed }

// countByCommand counts the events with the given name per SMB2 command code.
func (t *trace) countByCommand(name string) map[uint16]int64 {
	out := map[uint16]int64{}
	for _, e := range t.Events {
		if e.Name == name {
			if cmd, ok := e.field("cmd"); ok {
				out[uint16(cmd)]++
			}
		}
	}
	return out
}

// count counts the events with the given name.
func (t *trace) count(name string) int {
	n := 0
	for _, e := range t.Events {
		if e.Name == name {
			n++
		}
	}
	return n
}

// phase is one mark a scenario left with `phase NAME`.
type phase struct {
	Name   string
	Uptime float64 // guest seconds, the trace clock
	Wall   float64 // Unix seconds at the same instant
}

// parsePhases reads a phases file: "NAME UPTIME WALLCLOCK" per line, in time order.
func parsePhases(data []byte) ([]phase, error) {
	var out []phase
	for n, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("phases line %d: want NAME UPTIME WALLCLOCK, got %q", n+1, line)
		}
		up, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return nil, fmt.Errorf("phases line %d: %w", n+1, err)
		}
		wall, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			return nil, fmt.Errorf("phases line %d: %w", n+1, err)
		}
		if len(out) > 0 && up < out[len(out)-1].Uptime {
			return nil, fmt.Errorf("phases line %d: %s goes back in time", n+1, f[0])
		}
		out = append(out, phase{Name: f[0], Uptime: up, Wall: wall})
	}
	return out, nil
}

// phaseAt names the phase a guest time falls in ("" before the first mark).
func phaseAt(phases []phase, t float64) string {
	name := ""
	for _, p := range phases {
		if p.Uptime > t {
			break
		}
		name = p.Name
	}
	return name
}

// wallTime converts a guest uptime (the trace clock) to wall-clock time, with the offset
// between the two clocks the phase marks recorded (uptime has 10 ms resolution).
func wallTime(phases []phase, uptime float64) time.Time {
	var offset float64
	for _, p := range phases {
		offset += p.Wall - p.Uptime
	}
	offset /= float64(len(phases))
	return time.Unix(0, int64((uptime+offset)*1e9))
}

// commandCounts returns the per-command request counts of a Stats file's only server (the
// guest has one): the STATS2 table, which counts every request the client released.
func commandCounts(s *cifsproc.Stats) (map[uint16]int64, error) {
	if len(s.Servers) != 1 {
		return nil, fmt.Errorf("want one server in Stats, have %d", len(s.Servers))
	}
	if s.Servers[0].JiffiesPerSecond == 0 {
		return nil, errNoCommandTable
	}
	out := map[uint16]int64{}
	for _, c := range s.Servers[0].Commands {
		out[c.Command] = c.Count
	}
	return out, nil
}

// readStats parses dir/Stats.<name>.
func readStats(dir, name string) (*cifsproc.Stats, error) {
	data, err := os.ReadFile(filepath.Join(dir, "Stats."+name))
	if err != nil {
		return nil, err
	}
	return cifsproc.ParseStats(data)
}

// median of xs (not empty), which it sorts.
func median(xs []float64) float64 {
	sort.Float64s(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

var (
	// consoleFault matches, on a line the kernel printed (it starts with a printk time), the
	// first line of a report that means the guest kernel cannot be trusted any more: a die()
	// header ("Oops: int3: 0000 [#1]" on 6.12, "int3: 0000 [#1]" on 6.1), the cut mark
	// before a WARN or BUG, a BUG (soft lockups included), a WARN, a panic, an RCU stall or
	// a hung task. Lines the guest's programs write to the console carry no printk time.
	consoleFault = regexp.MustCompile(`^\[\s*\d+\.\d+\] (?:.*: [0-9a-f]{4} \[#\d+\]|-+\[ cut here \]-+|.*\bBUG: |WARNING: CPU: |Kernel panic - not syncing|.*detected stalls? on CPU|INFO: task .* blocked for more than)`)
	consoleEnd   = regexp.MustCompile(`---\[ end .*\]---`)
)

// maxFaultLines bounds one report: enough for the header, registers, code and call trace.
const maxFaultLines = 60

// kernelFaults returns the reports of faults on the guest's console, each from its first
// line to its "---[ end ... ]---" line (or maxFaultLines lines), in order; nil when the
// kernel reported none.
func kernelFaults(console []byte) []string {
	var reports []string
	var cur []string
	flush := func() {
		if cur != nil {
			reports = append(reports, strings.TrimRight(strings.Join(cur, "\n"), "\n"))
			cur = nil
		}
	}
	for _, line := range strings.Split(string(console), "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case cur != nil:
			cur = append(cur, line)
			if consoleEnd.MatchString(line) || len(cur) == maxFaultLines {
				flush()
			}
		case consoleFault.MatchString(line):
			cur = []string{line}
		}
	}
	flush()
	return reports
}

// rpcCompletions counts the trace's RPCs (rpcs) by program and procedure.
func (t *trace) rpcCompletions() (map[rpcOp]int64, error) {
	rpcs, err := t.rpcs()
	if err != nil {
		return nil, err
	}
	n := map[rpcOp]int64{}
	for _, r := range rpcs {
		n[r.Op]++
	}
	return n, nil
}

// errNoCommandTable: the kernel was built without CONFIG_CIFS_STATS2 (Debian's 5.10), so
// Stats counts no request per command and the trace is the only oracle.
var errNoCommandTable = errors.New("no per-command table in Stats (kernel without CONFIG_CIFS_STATS2)")

// parseFormats reads tracepoint format files, each after a "--- NAME" line (the guest's
// formats-GROUP.txt, testdata/kernel-*/cifs-formats.txt), into each tracepoint's own
// fields (the common_* ones left out), in order.
func parseFormats(data []byte) (map[string][]string, error) {
	out := map[string][]string{}
	var name string
	for n, line := range strings.Split(string(data), "\n") {
		if s, ok := strings.CutPrefix(line, "--- "); ok {
			name = strings.TrimSpace(s)
			out[name] = []string{}
			continue
		}
		decl, ok := strings.CutPrefix(strings.TrimSpace(line), "field:")
		if !ok {
			continue
		}
		if name == "" {
			return nil, fmt.Errorf("line %d: a field before the first \"--- NAME\" line", n+1)
		}
		decl, _, _ = strings.Cut(decl, ";")
		f := strings.Fields(decl)
		if len(f) < 2 {
			return nil, fmt.Errorf("line %d: field without a name: %q", n+1, line)
		}
		field, _, _ := strings.Cut(f[len(f)-1], "[")
		if !strings.HasPrefix(field, "common_") {
			out[name] = append(out[name], field)
		}
	}
	return out, nil
}

// smbConnections returns the local ports of the established TCP connections to port 445
// in a /proc/net/tcp table.
func smbConnections(data []byte) ([]uint16, error) {
	conns, err := procnet.Parse(data, nil)
	if err != nil {
		return nil, err
	}
	var ports []uint16
	for _, c := range conns {
		if c.Remote.Port() == 445 && c.State == procnet.StateEstablished {
			ports = append(ports, c.Local.Port())
		}
	}
	return ports, nil
}

// shareCount is one command's requests on a share's tree: the per-share counter's delta
// in Stats and the trace's smb3_cmd_enter on the tree.
type shareCount struct {
	Label        string // the kernel's label in Stats ("Creates")
	Command      uint16
	Stats, Trace int64
}

// shareCounts compares, for the share named share, the per-share "sent" counters of
// Stats (printed with or without CONFIG_CIFS_STATS2) over before..after with the
// smb3_cmd_enter events of t on the share's trees (tids: a reconnect may give the tree a
// new one), per command but TREE_CONNECT; the first row is the "SMBs" total without the
// tree connects. It is the premise where Stats has no per-command table (5.10).
func shareCounts(before, after *cifsproc.Stats, t *trace, share string, tids []uint32) ([]shareCount, error) {
	find := func(s *cifsproc.Stats) (*cifsproc.ShareStats, error) {
		for i := range s.Servers {
			for j := range s.Servers[i].Shares {
				if sh := &s.Servers[i].Shares[j]; sh.Share == share {
					return sh, nil
				}
			}
		}
		return nil, fmt.Errorf("no share %q in Stats", share)
	}
	b, err := find(before)
	if err != nil {
		return nil, err
	}
	a, err := find(after)
	if err != nil {
		return nil, err
	}
	enters := map[uint16]int64{}
	var total int64
	for _, e := range t.Events {
		tid, ok1 := e.field("tid")
		cmd, ok2 := e.field("cmd")
		if e.Name == "smb3_cmd_enter" && ok1 && ok2 && slices.Contains(tids, uint32(tid)) {
			enters[uint16(cmd)]++
			total++
		}
	}
	sent := func(sh *cifsproc.ShareStats, label string) int64 {
		for _, c := range sh.CommandCounters {
			if c.Label == label {
				return c.Sent
			}
		}
		return 0
	}
	// A TREE_CONNECT is sent before the tree has its id: the trace shows it with tid 0,
	// for whichever tree (IPC$ or the share) it connects. It is left out of the SMBs total
	// too.
	treeConnects := sent(a, "TreeConnects") - sent(b, "TreeConnects")
	out := []shareCount{{Label: "SMBs", Stats: a.SMBs - b.SMBs - treeConnects, Trace: total}}
	for _, c := range a.CommandCounters {
		if c.Known && c.Label != "TreeConnects" {
			out = append(out, shareCount{Label: c.Label, Command: c.Command, Stats: c.Sent - sent(b, c.Label), Trace: enters[c.Command]})
		}
	}
	return out, nil
}

// shareTIDs returns the tree ids DebugData files list for the share named share.
func shareTIDs(share string, files ...[]byte) ([]uint32, error) {
	var tids []uint32
	for _, data := range files {
		dd, err := cifsproc.ParseDebugData(data)
		if err != nil {
			return nil, err
		}
		for _, s := range dd.Shares {
			if s.Share == share && !slices.Contains(tids, s.TreeID) {
				tids = append(tids, s.TreeID)
			}
		}
	}
	if len(tids) == 0 {
		return nil, fmt.Errorf("DebugData lists no share %q", share)
	}
	return tids, nil
}
