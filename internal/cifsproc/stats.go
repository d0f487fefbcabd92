package cifsproc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Stats is what ParseStats extracts from /proc/fs/cifs/Stats. Counters are as the kernel
// prints them: cumulative since the cifs module loaded or since someone last wrote to
// the Stats file (which resets them).
type Stats struct {
	Sessions          int64 // "CIFS Session": sessions allocated now
	Shares            int64 // "Share (unique mount targets)": tree connections allocated now
	LargeBuffers      int64 // "SMB Request/Response Buffer": large buffers in use
	LargeBufferPool   int64
	SmallBuffers      int64 // "SMB Small Req/Resp Buffer": small buffers in use
	SmallBufferPool   int64
	HasAllocTotals    bool  // the "Total Large N Small M Allocations" line (CONFIG_CIFS_STATS2) was there
	LargeAllocations  int64 // large buffers allocated since reset
	SmallAllocations  int64
	MIDs              int64 // "Operations (MIDs)": requests allocated now
	SessionReconnects int64
	ShareReconnects   int64
	VFSOperations     int64 // "Total vfs operations" since reset
	VFSMaxActive      int64 // "maximum at one time" since reset

	Servers []ServerStats
}

// ServerStats is the block Stats prints for each TCP connection to a server.
type ServerStats struct {
	// Server names the connection. The kernel does not print it for the block, so it is
	// taken from the block's shares (\\server\share) or its slow-response lines; "" when
	// the block has neither.
	Server      string
	MaxInFlight int64 // most requests on the wire at once since reset

	// JiffiesPerSecond is the HZ the per-command times are counted in; 0 when the kernel
	// was built without CONFIG_CIFS_STATS2 and printed no per-command table.
	JiffiesPerSecond int64
	Commands         []CommandStats
	SlowResponses    []SlowResponses
	Shares           []ShareStats
}

// CommandStats is one row of the per-command table (CONFIG_CIFS_STATS2).
type CommandStats struct {
	Command           uint16 // SMB2 command code
	Count             int64  // responses received
	TotalJiffies      int64  // summed response time
	FastestJiffy      int64  // fastest response since reset
	SlowestJiffy      int64  // slowest response since reset
	HasFastestSlowest bool   // the row had the Fastest and Slowest columns
}

// SlowResponses counts the responses to one command that took longer than the kernel's
// slow-response limit (cifs' own smb3_slow_rsp detector).
type SlowResponses struct {
	Command uint16
	Count   int64
}

// ShareStats is the per-share block of Stats.
type ShareStats struct {
	Server, Share string
	Disconnected  bool      // the tree needs a reconnect
	Since         time.Time // when its counters were last reset (newer kernels print it); zero if absent
	SMBs          int64     // requests sent on this tree

	HasBytes        bool // the "Bytes read/written" line was there (SMB2+ dialects)
	BytesRead       int64
	BytesWritten    int64
	HasOpenFiles    bool
	OpenFilesLocal  int64
	OpenFilesRemote int64
	CommandCounters []ShareCommand
}

// ShareCommand is one "Creates: N total M failed" line of a share block.
type ShareCommand struct {
	Label   string // the kernel's label: "Creates", "QueryInfos", ...
	Command uint16 // the SMB2 command code the label counts
	Known   bool   // Command is meaningful (the label is one this parser knows)
	Sent    int64
	Failed  int64
}

// shareLabelCommands maps the labels smb2_print_stats prints to SMB2 command codes.
var shareLabelCommands = map[string]uint16{
	"TreeConnects":     3,
	"TreeDisconnects":  4,
	"Creates":          5,
	"Closes":           6,
	"Flushes":          7,
	"Reads":            8,
	"Writes":           9,
	"Locks":            10,
	"IOCTLs":           11,
	"QueryDirectories": 14,
	"ChangeNotifies":   15,
	"QueryInfos":       16,
	"SetInfos":         17,
	"OplockBreaks":     18,
}

// ErrNotStats is returned for input that does not look like /proc/fs/cifs/Stats.
var ErrNotStats = errors.New("not a /proc/fs/cifs/Stats listing")

// ParseStats extracts the counters from the text of /proc/fs/cifs/Stats. Lines it does
// not know are skipped (kernels add some over time, and SMB1 shares print their own
// set); known lines whose numbers do not parse are reported in the returned error next
// to everything that did parse.
func ParseStats(data []byte) (*Stats, error) {
	p := statsParser{out: &Stats{}}
	if err := eachLine(data, p.line); err != nil {
		p.errs = append(p.errs, err)
	}
	if !p.sawHeader {
		return p.out, ErrNotStats
	}
	for i := range p.out.Servers {
		nameServer(&p.out.Servers[i])
	}
	return p.out, errors.Join(p.errs...)
}

// nameServer names a server block that had no slow-response line (which prints the
// connection's host name) after its first share.
func nameServer(s *ServerStats) {
	if s.Server == "" && len(s.Shares) > 0 {
		s.Server = s.Shares[0].Server
	}
}

type statsParser struct {
	out       *Stats
	errs      []error
	sawHeader bool
	inTable   bool
}

func (p *statsParser) server() *ServerStats {
	if len(p.out.Servers) == 0 {
		// A share block before any "Max requests in flight" line: older kernels print
		// no per-server header, so all shares go in one unnamed block.
		p.out.Servers = append(p.out.Servers, ServerStats{})
	}
	return &p.out.Servers[len(p.out.Servers)-1]
}

func (p *statsParser) share() *ShareStats {
	s := p.server()
	if len(s.Shares) == 0 {
		return nil
	}
	return &s.Shares[len(s.Shares)-1]
}

func (p *statsParser) bad(line string, err error) {
	p.errs = append(p.errs, fmt.Errorf("stats line %q: %w", line, err))
}

func (p *statsParser) line(raw string) {
	line := strings.TrimSpace(raw)
	if line == "" {
		return
	}
	if line == "Resources in use" {
		p.sawHeader = true
		return
	}
	if p.inTable {
		if p.tableRow(line) {
			return
		}
		p.inTable = false
	}
	label, value, hasColon := strings.Cut(line, ":")
	switch {
	case hasColon && label == "CIFS Session":
		p.ints(line, value, &p.out.Sessions)
	case hasColon && label == "Share (unique mount targets)":
		p.ints(line, value, &p.out.Shares)
	case hasColon && label == "SMB Request/Response Buffer":
		p.ints(line, strings.Replace(value, "Pool size:", "", 1), &p.out.LargeBuffers, &p.out.LargeBufferPool)
	case hasColon && label == "SMB Small Req/Resp Buffer":
		p.ints(line, strings.Replace(value, "Pool size:", "", 1), &p.out.SmallBuffers, &p.out.SmallBufferPool)
	case hasColon && label == "Operations (MIDs)":
		p.ints(line, value, &p.out.MIDs)
	case hasColon && label == "Total vfs operations":
		p.ints(line, strings.Replace(value, "maximum at one time:", "", 1), &p.out.VFSOperations, &p.out.VFSMaxActive)
	case hasColon && label == "Max requests in flight":
		p.out.Servers = append(p.out.Servers, ServerStats{})
		p.ints(line, value, &p.out.Servers[len(p.out.Servers)-1].MaxInFlight)
	case strings.HasPrefix(line, "Total Large ") && strings.HasSuffix(line, " Allocations"):
		v := strings.TrimSuffix(strings.TrimPrefix(line, "Total Large "), " Allocations")
		if p.ints(line, strings.Replace(v, "Small", "", 1), &p.out.LargeAllocations, &p.out.SmallAllocations) {
			p.out.HasAllocTotals = true
		}
	case strings.HasSuffix(line, " share reconnects"):
		v := strings.TrimSuffix(line, " share reconnects")
		p.ints(line, strings.Replace(v, "session", "", 1), &p.out.SessionReconnects, &p.out.ShareReconnects)
	case strings.HasPrefix(line, "Total time spent processing by command."):
		p.tableHeader(line)
	case strings.Contains(line, " slow responses from "):
		p.slowResponses(line)
	default:
		if rest, ok := cutItemNumber(line); ok && strings.HasPrefix(rest, `\\`) {
			p.shareHeader(line, rest)
			return
		}
		if hasColon {
			p.shareLine(line, label, value)
		}
	}
}

// ints parses the whitespace-separated integers of value into dst, all or nothing.
func (p *statsParser) ints(line, value string, dst ...*int64) bool {
	fields := strings.Fields(value)
	if len(fields) != len(dst) {
		p.bad(line, fmt.Errorf("want %d numbers, have %d", len(dst), len(fields)))
		return false
	}
	vals := make([]int64, len(dst))
	for i, f := range fields {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			p.bad(line, err)
			return false
		}
		vals[i] = v
	}
	for i, d := range dst {
		*d = vals[i]
	}
	return true
}

func (p *statsParser) tableHeader(line string) {
	// "... Time units are jiffies (250 per second)"
	s := p.server()
	_, after, ok := strings.Cut(line, "(")
	hz, _, ok2 := strings.Cut(after, " per second)")
	if !ok || !ok2 {
		p.bad(line, errors.New("no jiffies rate"))
		return
	}
	v, err := strconv.ParseInt(strings.TrimSpace(hz), 10, 64)
	if err != nil || v <= 0 {
		p.bad(line, fmt.Errorf("bad jiffies rate %q", hz))
		return
	}
	s.JiffiesPerSecond = v
	p.inTable = true
}

// tableRow consumes one line of the per-command table, reporting false at the first
// line that is not part of it.
func (p *statsParser) tableRow(line string) bool {
	if strings.HasPrefix(line, "SMB3 CMD") || strings.HasPrefix(line, "--------") {
		return true
	}
	fields := strings.Fields(line)
	if len(fields) < 2 || len(fields) > 5 {
		return false
	}
	var nums [5]int64
	for i, f := range fields {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return false
		}
		nums[i] = v
	}
	if nums[0] < 0 || nums[0] > 0xffff {
		p.bad(line, errors.New("command code out of range"))
		return true
	}
	s := p.server()
	s.Commands = append(s.Commands, CommandStats{
		Command: uint16(nums[0]), Count: nums[1], TotalJiffies: nums[2],
		FastestJiffy: nums[3], SlowestJiffy: nums[4], HasFastestSlowest: len(fields) == 5,
	})
	return true
}

func (p *statsParser) slowResponses(line string) {
	// "%d slow responses from %s for command %d"
	count, rest, _ := strings.Cut(line, " slow responses from ")
	host, cmd, ok := strings.Cut(rest, " for command ")
	if !ok {
		p.bad(line, errors.New("no command"))
		return
	}
	n, err1 := strconv.ParseInt(strings.TrimSpace(count), 10, 64)
	c, err2 := strconv.ParseUint(strings.TrimSpace(cmd), 10, 16)
	if err := errors.Join(err1, err2); err != nil {
		p.bad(line, err)
		return
	}
	s := p.server()
	s.SlowResponses = append(s.SlowResponses, SlowResponses{Command: uint16(c), Count: n})
	if s.Server == "" {
		s.Server = strings.TrimSpace(host)
	}
}

func (p *statsParser) shareHeader(line, rest string) {
	tree, flags, _ := strings.Cut(rest, "\t")
	tree = strings.TrimSpace(tree)
	if i := strings.IndexByte(tree, ' '); i >= 0 {
		flags = tree[i:] + flags
		tree = tree[:i]
	}
	server, share, ok := SplitUNC(tree)
	if !ok {
		p.bad(line, errors.New("not a \\\\server\\share name"))
		return
	}
	s := p.server()
	s.Shares = append(s.Shares, ShareStats{
		Server: server, Share: share,
		Disconnected: strings.Contains(flags, "DISCONNECTED"),
	})
}

func (p *statsParser) shareLine(line, label, value string) {
	sh := p.share()
	if sh == nil {
		return
	}
	value = strings.TrimSpace(value)
	switch label {
	case "SMBs":
		// "SMBs: 310" or, on newer kernels, "SMBs: 310 since 2026-11-26 02:11:33 UTC".
		n, since, hasSince := strings.Cut(value, " since ")
		if !p.ints(line, n, &sh.SMBs) || !hasSince {
			return
		}
		t, err := time.Parse("2006-01-02 15:04:05 MST", strings.TrimSpace(since))
		if err != nil {
			p.bad(line, err)
			return
		}
		sh.Since = t.UTC()
	case "Bytes read":
		// "Bytes read: 4194328  Bytes written: 4194311"
		if p.ints(line, strings.Replace(value, "Bytes written:", "", 1), &sh.BytesRead, &sh.BytesWritten) {
			sh.HasBytes = true
		}
	case "Open files":
		// "Open files: 1 total (local), 1 open on server"
		v := strings.Replace(strings.Replace(value, "total (local),", "", 1), "open on server", "", 1)
		if p.ints(line, v, &sh.OpenFilesLocal, &sh.OpenFilesRemote) {
			sh.HasOpenFiles = true
		}
	default:
		// "Creates: 55 total 0 failed", "OplockBreaks: 0 sent 0 failed"
		f := strings.Fields(value)
		if len(f) != 4 || (f[1] != "total" && f[1] != "sent") || f[3] != "failed" {
			return // an SMB1 share's line, or one a newer kernel added
		}
		var sc ShareCommand
		if !p.ints(line, f[0]+" "+f[2], &sc.Sent, &sc.Failed) {
			return
		}
		sc.Label = label
		sc.Command, sc.Known = shareLabelCommands[label]
		sh.CommandCounters = append(sh.CommandCounters, sc)
	}
}
