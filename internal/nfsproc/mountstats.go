package nfsproc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Limits on what Parse reads. A host with a thousand NFS mounts prints about 5 MiB; a
// line holds at most an escaped path (PATH_MAX, four bytes per escaped byte) and the
// mount options.
const (
	MaxBytes     = 64 << 20
	MaxLineBytes = 64 << 10
)

// ErrTooLarge is returned, with no mounts, for input beyond MaxBytes.
var ErrTooLarge = fmt.Errorf("mountstats larger than %d bytes", MaxBytes)

// Mount is the block mountstats prints for one nfs or nfs4 mount. Counters are the
// kernel's: cumulative since the mount (its superblock) was set up, never reset.
type Mount struct {
	Line int // line of the block's "device" line

	Device     string // as mounted: "server:/export"
	Server     string // host part of Device, without IPv6 brackets; "" if Device has no ':'
	Export     string // path part of Device
	MountPoint string
	FSType     string // "nfs" or "nfs4"
	StatsVers  string // the statvers= of the device line: "1.1"

	Opts string // the opts: line as printed; see Option
	// Age is the time since the mount was set up (printed in whole seconds).
	Age time.Duration

	// Events are the NFSIOS_* event counters in the kernel's order (EventNames names
	// the first ones; newer kernels may print more). Bytes are the NFSIOS_*BYTES and
	// page counters in the kernel's order (ByteNames).
	Events []uint64
	Bytes  []uint64

	RPCStatsVers string // "RPC iostats version: 1.1"
	Program      uint32 // RPC program number: 100003 for NFS
	Version      uint32 // RPC program version: 2, 3 or 4
	ProgramName  string // "nfs"

	// Transports has one entry per xprt: line (several with nconnect).
	Transports []Transport
	// Ops are the per-op statistics in the kernel's order.
	Ops []Op
}

// Option returns the value of key in the opts: line ("" for a flag such as "hard"),
// and whether the line has it.
func (m *Mount) Option(key string) (string, bool) {
	for opt := range strings.SplitSeq(m.Opts, ",") {
		k, v, _ := strings.Cut(opt, "=")
		if k == key {
			return v, true
		}
	}
	return "", false
}

// EventNames name the NFSIOS_* event counters of the events: line
// (include/linux/nfs_iostat.h), in the order the kernel prints them.
var EventNames = [...]string{
	"inode_revalidate", "dentry_revalidate", "data_invalidate", "attr_invalidate",
	"vfs_open", "vfs_lookup", "vfs_access", "vfs_update_page", "vfs_read_page",
	"vfs_read_pages", "vfs_write_page", "vfs_write_pages", "vfs_getdents", "vfs_setattr",
	"vfs_flush", "vfs_fsync", "vfs_lock", "vfs_release", "congestion_wait",
	"setattr_trunc", "extend_write", "silly_rename", "short_read", "short_write",
	"delay", "pnfs_read", "pnfs_write",
}

// Indexes of the bytes: line.
const (
	BytesNormalRead = iota // read by applications through the page cache
	BytesNormalWritten
	BytesDirectRead // read by applications with O_DIRECT
	BytesDirectWritten
	BytesServerRead // read from the server
	BytesServerWritten
	PagesRead
	PagesWritten
)

// ByteNames name the counters of the bytes: line, in the order the kernel prints them.
var ByteNames = [...]string{
	"normal_read", "normal_written", "direct_read", "direct_written",
	"server_read", "server_written", "read_pages", "write_pages",
}

// Transport is one xprt: line: the counters of an RPC transport.
type Transport struct {
	Proto    string // "tcp", "udp", "rdma", "local"
	Port     uint64 // local port (0 for rdma and local)
	Binds    uint64 // rpcbind queries
	Connects uint64 // connections set up
	Sends    uint64 // requests sent
	Receives uint64 // replies received
	BadXIDs  uint64 // replies that matched no request
	// RequestsSum and BacklogSum add up, at each send, the requests in flight and the
	// requests waiting for a slot: divided by Sends they are the average queue lengths.
	RequestsSum uint64
	BacklogSum  uint64
	// Statvers 1.1 (TCP, UDP, local): the most slots used at once, and the summed
	// counts of requests being sent and awaiting replies at each send.
	HasSlots   bool
	MaxSlots   uint64
	SendingSum uint64
	PendingSum uint64
}

// Op is one line of the per-op statistics.
type Op struct {
	Name          string // as mountstats prints it: "READ", "OPEN_NOATTR", "NULL"
	Ops           uint64 // requests completed
	Transmissions uint64 // times they were sent, retransmissions included
	MajorTimeouts uint64
	BytesSent     uint64 // request bytes, RPC headers included
	BytesReceived uint64 // reply bytes, RPC headers included
	Queue         time.Duration
	RTT           time.Duration
	Execute       time.Duration
	// HasErrors: the kernel printed the errors column (Linux 5.3 and later).
	HasErrors bool
	Errors    uint64 // requests that completed with an error status
}

// Parse reads /proc/self/mountstats and returns its nfs and nfs4 mounts. Other mounts'
// lines and lines it does not know (newer kernels add some) are skipped, and so are
// extra numbers at the end of a line it knows. Known lines whose numbers do not parse
// are reported as name:line:col in the returned error, next to everything that did
// parse. Input beyond MaxBytes, or a line beyond MaxLineBytes, is refused: no mounts
// and an error.
func Parse(name string, r io.Reader) ([]Mount, error) {
	p := parser{name: name}
	sc := bufio.NewScanner(&limitReader{r: r, left: MaxBytes})
	sc.Buffer(make([]byte, 0, 4096), MaxLineBytes)
	for sc.Scan() {
		p.lineNo++
		p.line(sc.Bytes())
	}
	switch err := sc.Err(); {
	case errors.Is(err, ErrTooLarge):
		return nil, fmt.Errorf("%s: %w", name, err)
	case errors.Is(err, bufio.ErrTooLong):
		return nil, fmt.Errorf("%s:%d: line longer than %d bytes", name, p.lineNo+1, MaxLineBytes)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p.mounts, errors.Join(p.errs...)
}

// limitReader fails with ErrTooLarge once more than left bytes were read.
type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(b []byte) (int, error) {
	if l.left < 0 {
		return 0, ErrTooLarge
	}
	if int64(len(b)) > l.left+1 {
		b = b[:l.left+1]
	}
	n, err := l.r.Read(b)
	l.left -= int64(n)
	if l.left < 0 {
		return n, ErrTooLarge
	}
	return n, err
}

type parser struct {
	name   string
	lineNo int
	mounts []Mount
	cur    *Mount // the nfs block being read, nil outside one
	inOps  bool
	errs   []error
	f      []field // scratch
}

// field is a whitespace-separated word of a line and its column (1-based).
type field struct {
	b   []byte
	col int
}

func (p *parser) fields(line []byte, from int) []field {
	p.f = p.f[:0]
	for i := from; i < len(line); {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		start := i
		for i < len(line) && line[i] != ' ' && line[i] != '\t' {
			i++
		}
		if i > start {
			p.f = append(p.f, field{b: line[start:i], col: start + 1})
		}
	}
	return p.f
}

func (p *parser) bad(col int, key string, name []byte, what string, got []byte) {
	p.errs = append(p.errs, fmt.Errorf("%s:%d:%d: %s%s: %s; got %q", p.name, p.lineNo, col, key, name, what, got))
}

func (p *parser) line(line []byte) {
	if bytes.HasPrefix(line, []byte("device ")) || bytes.HasPrefix(line, []byte("no device ")) {
		p.device(line)
		return
	}
	if p.cur == nil {
		return
	}
	i := 0
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	if i == len(line) {
		p.inOps = false
		return
	}
	body := line[i:]
	key, _, ok := bytes.Cut(body, []byte(":"))
	if !ok {
		if string(body) == "per-op statistics" {
			p.inOps = true
		}
		return
	}
	from := i + len(key) + 1
	if p.inOps && isOpName(key) {
		p.op(line, key, from)
		return
	}
	switch string(key) {
	case "opts":
		p.cur.Opts = string(bytes.TrimSpace(line[from:]))
	case "age":
		var age [1]uint64
		if _, ok := p.uints(line, from, "age", nil, 1, age[:]); ok {
			p.cur.Age = time.Duration(min(age[0], uint64(1<<63-1)/uint64(time.Second))) * time.Second
		}
	case "events":
		p.cur.Events = p.counters(line, from, "events")
	case "bytes":
		p.cur.Bytes = p.counters(line, from, "bytes")
	case "RPC iostats version":
		p.rpcVersion(line, from)
	case "xprt":
		p.xprt(line, from)
	}
}

// isOpName reports whether key can be an operation of the per-op statistics: the
// kernel names them in capitals ("READ", "OPEN_NOATTR"), so a lower-case key after
// them is a line a newer kernel added, not a malformed operation.
func isOpName(key []byte) bool {
	for _, c := range key {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return len(key) > 0
}

// device starts a block: "device SRC mounted on DIR with fstype TYPE [statvers=V]",
// SRC and DIR with space, tab, newline and backslash escaped as \ooo.
func (p *parser) device(line []byte) {
	p.cur, p.inOps = nil, false
	src, rest, ok1 := bytes.Cut(line, []byte(" mounted on "))
	dir, rest, ok2 := bytes.Cut(rest, []byte(" with fstype "))
	if !ok1 || !ok2 || bytes.HasPrefix(line, []byte("no device ")) {
		return
	}
	fs := p.fields(rest, 0)
	if len(fs) == 0 || (string(fs[0].b) != "nfs" && string(fs[0].b) != "nfs4") {
		return
	}
	m := Mount{Line: p.lineNo, FSType: string(fs[0].b)}
	for _, f := range fs[1:] {
		if v, ok := bytes.CutPrefix(f.b, []byte("statvers=")); ok {
			m.StatsVers = string(v)
		}
	}
	m.Device = unescape(bytes.TrimPrefix(src, []byte("device ")))
	m.MountPoint = unescape(dir)
	m.Server, m.Export = SplitDevice(m.Device)
	p.mounts = append(p.mounts, m)
	p.cur = &p.mounts[len(p.mounts)-1]
}

// SplitDevice splits an NFS mount's device, "host:/path" or "[v6addr]:/path", into
// the server (without brackets) and the export; server is "" when dev has no ':'.
func SplitDevice(dev string) (server, export string) {
	if rest, ok := strings.CutPrefix(dev, "["); ok {
		if host, path, ok := strings.Cut(rest, "]:"); ok {
			return host, path
		}
	}
	if host, path, ok := strings.Cut(dev, ":"); ok {
		return host, path
	}
	return "", dev
}

// JoinDevice is SplitDevice's inverse: the device as mounted, an IPv6 server in
// brackets; "" when server is "" (nothing is known).
func JoinDevice(server, export string) string {
	switch {
	case server == "":
		return ""
	case strings.Contains(server, ":"):
		return "[" + server + "]:" + export
	}
	return server + ":" + export
}

// unescape undoes the kernel's mangle(): \ooo octal escapes.
func unescape(b []byte) string {
	if bytes.IndexByte(b, '\\') < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+3 < len(b) && isOctal(b[i+1]) && isOctal(b[i+2]) && isOctal(b[i+3]) && b[i+1] <= '3' {
			out = append(out, (b[i+1]-'0')<<6|(b[i+2]-'0')<<3|(b[i+3]-'0'))
			i += 3
			continue
		}
		out = append(out, b[i])
	}
	return string(out)
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// parseUint parses a decimal counter without allocating.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (^uint64(0)-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

const notCounter = "not an unsigned decimal counter"

// uints parses the numbers of the line from byte from on into dst, all or nothing,
// and returns how many there were (at least least; those past len(dst) are
// are ignored). key and name (appended to key) say what the line is in errors.
func (p *parser) uints(line []byte, from int, key string, name []byte, least int, dst []uint64) (int, bool) {
	fs := p.fields(line, from)
	if len(fs) < least {
		p.bad(len(line)+1, key, name, fmt.Sprintf("want at least %d numbers, have %d", least, len(fs)), bytes.TrimSpace(line[from:]))
		return 0, false
	}
	for i, f := range fs[:min(len(fs), len(dst))] {
		v, ok := parseUint(f.b)
		if !ok {
			p.bad(f.col, key, name, notCounter, f.b)
			return 0, false
		}
		dst[i] = v
	}
	return len(fs), true
}

// counters parses a line of counters of any length; nil if one is malformed.
func (p *parser) counters(line []byte, from int, key string) []uint64 {
	fs := p.fields(line, from)
	out := make([]uint64, len(fs))
	for i, f := range fs {
		v, ok := parseUint(f.b)
		if !ok {
			p.bad(f.col, key, nil, notCounter, f.b)
			return nil
		}
		out[i] = v
	}
	return out
}

// rpcVersion reads "RPC iostats version: 1.1  p/v: 100003/4 (nfs)".
func (p *parser) rpcVersion(line []byte, from int) {
	const key = "RPC iostats version"
	fs := p.fields(line, from)
	if len(fs) == 0 {
		return
	}
	p.cur.RPCStatsVers = string(fs[0].b)
	for i := 1; i+1 < len(fs); i++ {
		if string(fs[i].b) != "p/v:" {
			continue
		}
		prog, vers, ok := bytes.Cut(fs[i+1].b, []byte("/"))
		pn, ok1 := parseUint(prog)
		vn, ok2 := parseUint(vers)
		if !ok || !ok1 || !ok2 || pn > 1<<32-1 || vn > 1<<32-1 {
			p.bad(fs[i+1].col, key, nil, "p/v: want program/version", fs[i+1].b)
			return
		}
		p.cur.Program, p.cur.Version = uint32(pn), uint32(vn)
		if i+2 < len(fs) {
			p.cur.ProgramName = string(bytes.Trim(fs[i+2].b, "()"))
		}
		return
	}
}

// xprtField names a column of an xprt: line.
type xprtField uint8

const (
	xPort xprtField = iota
	xBinds
	xConnects
	xConnectTime
	xIdle // seconds since last use; signed in the kernel (%ld)
	xSends
	xRecvs
	xBadXIDs
	xReqs
	xBacklog
	xMaxSlots
	xSending
	xPending
)

// xprtLayouts are the columns of each transport's xprt: line after its name, and how
// many of them statvers 1.0 printed (the rest came with 1.1; rdma prints its own
// counters after the common ten instead).
var xprtLayouts = map[string]struct {
	cols []xprtField
	min  int
}{
	"tcp":   {[]xprtField{xPort, xBinds, xConnects, xConnectTime, xIdle, xSends, xRecvs, xBadXIDs, xReqs, xBacklog, xMaxSlots, xSending, xPending}, 10},
	"udp":   {[]xprtField{xPort, xBinds, xSends, xRecvs, xBadXIDs, xReqs, xBacklog, xMaxSlots, xSending, xPending}, 7},
	"local": {[]xprtField{xBinds, xConnects, xConnectTime, xIdle, xSends, xRecvs, xBadXIDs, xReqs, xBacklog, xMaxSlots, xSending, xPending}, 9},
	"rdma":  {[]xprtField{xPort, xBinds, xConnects, xConnectTime, xIdle, xSends, xRecvs, xBadXIDs, xReqs, xBacklog}, 10},
}

func (p *parser) xprt(line []byte, from int) {
	fs := p.fields(line, from)
	if len(fs) == 0 {
		p.bad(len(line)+1, "xprt", nil, "no transport name", nil)
		return
	}
	layout, ok := xprtLayouts[string(fs[0].b)]
	if !ok {
		return // a transport this parser does not know
	}
	nums := fs[1:]
	if len(nums) < layout.min {
		p.bad(len(line)+1, "xprt", nil, fmt.Sprintf("%s: want at least %d numbers, have %d", fs[0].b, layout.min, len(nums)), bytes.TrimSpace(line[from:]))
		return
	}
	var vals [xPending + 1]uint64
	hasSlots := false
	for i, col := range layout.cols {
		if i >= len(nums) {
			break
		}
		b := nums[i].b
		if col == xIdle {
			b = bytes.TrimPrefix(b, []byte("-"))
		}
		v, ok := parseUint(b)
		if !ok {
			p.bad(nums[i].col, "xprt", nil, notCounter, nums[i].b)
			return
		}
		vals[col] = v
		hasSlots = hasSlots || col == xMaxSlots
	}
	p.cur.Transports = append(p.cur.Transports, Transport{
		Proto: string(fs[0].b), Port: vals[xPort], Binds: vals[xBinds], Connects: vals[xConnects],
		Sends: vals[xSends], Receives: vals[xRecvs], BadXIDs: vals[xBadXIDs],
		RequestsSum: vals[xReqs], BacklogSum: vals[xBacklog],
		HasSlots: hasSlots,
		MaxSlots: vals[xMaxSlots], SendingSum: vals[xSending], PendingSum: vals[xPending],
	})
}

// op reads "NAME: ops trans timeouts sent recv queue rtt execute [errors]", times in ms.
func (p *parser) op(line, name []byte, from int) {
	var n [9]uint64
	count, ok := p.uints(line, from, "per-op ", name, 8, n[:])
	if !ok {
		return
	}
	p.cur.Ops = append(p.cur.Ops, Op{
		Name: string(name), Ops: n[0], Transmissions: n[1], MajorTimeouts: n[2],
		BytesSent: n[3], BytesReceived: n[4],
		Queue: ms(n[5]), RTT: ms(n[6]), Execute: ms(n[7]),
		HasErrors: count >= 9, Errors: n[8],
	})
}

// ms converts milliseconds, saturating rather than wrapping.
func ms(v uint64) time.Duration {
	const maxMs = uint64(1<<63-1) / uint64(time.Millisecond)
	return time.Duration(min(v, maxMs)) * time.Millisecond
}
