// Package cifsproc parses the cifs client's /proc/fs/cifs files: DebugData, which names
// the tree connection behind a (session id, tree id) pair, and Stats, which holds the
// counters the kernel keeps per share and per server. Nothing here reads an SMB mount.
package cifsproc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Share is one tree connection listed in DebugData.
type Share struct {
	SessionID uint64 // SMB session id (ses->Suid), as the smb3_cmd_* tracepoints carry it
	TreeID    uint32 // SMB tree id (tcon->tid)
	Server    string // server host as the tree name spells it (\\server\share)
	Share     string // share name, the tree name's last part ("IPC$" for the session's IPC tree)
	Address   string // the server's address the session connected to ("" when not listed)
	IPC       bool   // the session's IPC$ tree rather than a mounted share
}

// UNC returns the tree name as the kernel prints it: \\server\share.
func (s Share) UNC() string { return `\\` + s.Server + `\` + s.Share }

// Session is one SMB session listed in DebugData, with the server it belongs to.
type Session struct {
	SessionID uint64
	Server    string // the connection's host name (Hostname:), or its address
	Address   string
}

// DebugData is what ParseDebugData extracts from /proc/fs/cifs/DebugData.
type DebugData struct {
	Sessions []Session
	Shares   []Share
}

// ErrNotDebugData is returned for input that does not look like /proc/fs/cifs/DebugData.
var ErrNotDebugData = errors.New("not a /proc/fs/cifs/DebugData listing")

// ParseDebugData extracts every session and tree connection from the text of
// /proc/fs/cifs/DebugData. Layouts of kernels 5.10 to 7.x are accepted; lines it does not
// know are skipped, since each kernel release adds some. Entries it cannot complete
// (a share without its tid line, a session without its id) are left out and reported
// in the returned error, next to everything that did parse.
func ParseDebugData(data []byte) (*DebugData, error) {
	p := debugDataParser{out: &DebugData{}}
	if err := eachLine(data, p.line); err != nil {
		p.errs = append(p.errs, err)
	}
	p.endShare()
	p.endSession()
	if !p.sawServers {
		return p.out, ErrNotDebugData
	}
	return p.out, errors.Join(p.errs...)
}

type debugDataParser struct {
	out        *DebugData
	errs       []error
	sawServers bool

	hostname string // current server's Hostname:

	inSession bool
	sesOK     bool
	sesID     uint64
	sesAddr   string

	inShare  bool
	shareIPC bool
	tree     string // \\server\share of the current share
	tidOK    bool
	tid      uint32
}

func (p *debugDataParser) line(raw string) {
	if strings.HasPrefix(raw, "Servers:") {
		p.sawServers = true
		return
	}
	indented := raw != "" && (raw[0] == '\t' || raw[0] == ' ')
	line := strings.TrimSpace(raw)
	if line == "" {
		return
	}
	rest, numbered := cutItemNumber(line)

	switch {
	case numbered && !indented && strings.HasPrefix(rest, "ConnectionId:"):
		// "1) ConnectionId: 0x1 Hostname: 127.0.0.1": a new server (not a channel line,
		// which is indented and starts with "Channel:").
		p.endShare()
		p.endSession()
		p.hostname = fieldAfter(rest, "Hostname:")
	case numbered && (strings.HasPrefix(rest, "Address:") || strings.HasPrefix(rest, "Name:")):
		// "1) Address: 127.0.0.1 Uses: 1 ..." or, when the server sent its OS and domain
		// names, "1) Name: 127.0.0.1  Domain: ...": both print the session's address.
		// Indented under its server's "ConnectionId:" line since 5.11; before (5.10),
		// "1) Name: 127.0.0.1 Uses: 1 ..." at the margin starts a server and its session
		// at once, with no host name of its own.
		p.endShare()
		p.endSession()
		if !indented {
			p.hostname = ""
		}
		p.inSession = true
		if strings.HasPrefix(rest, "Address:") {
			p.sesAddr = fieldAfter(rest, "Address:")
		} else {
			p.sesAddr = fieldAfter(rest, "Name:")
		}
	case numbered && indented && p.inSession && isShareLine(rest):
		p.endShare()
		p.startShare(rest)
	default:
		if p.inSession {
			if v := fieldAfter(line, "SessionId:"); v != "" && !p.sesOK {
				id, err := strconv.ParseUint(v, 0, 64)
				if err != nil {
					p.errs = append(p.errs, fmt.Errorf("session at %s: bad SessionId %q", p.sesAddr, v))
					return
				}
				p.sesID, p.sesOK = id, true
				p.out.Sessions = append(p.out.Sessions, Session{SessionID: id, Server: p.serverName(), Address: p.sesAddr})
			}
		}
		if p.inShare && !p.tidOK {
			if v := fieldAfter(line, "tid:"); v != "" {
				tid, err := strconv.ParseUint(v, 0, 32)
				if err != nil {
					p.errs = append(p.errs, fmt.Errorf("share %s: bad tid %q", p.tree, v))
					p.inShare = false
					return
				}
				p.tid, p.tidOK = uint32(tid), true
			}
		}
	}
}

// isShareLine tells a share's first line ("\\srv\share Mounts: 1 ...", "IPC: \\srv\IPC$
// Mounts: ...", "IPC: none") from the numbered interface lines ("1)\tSpeed: ...") that
// follow the shares.
func isShareLine(rest string) bool {
	return strings.HasPrefix(rest, `\\`) || strings.HasPrefix(rest, "IPC:")
}

func (p *debugDataParser) startShare(rest string) {
	ipc := false
	if r, ok := strings.CutPrefix(rest, "IPC:"); ok {
		ipc = true
		rest = strings.TrimSpace(r)
	}
	if !strings.HasPrefix(rest, `\\`) {
		return // "IPC: none": the session has no IPC tree
	}
	tree := rest
	if i := strings.IndexAny(tree, " \t"); i >= 0 {
		tree = tree[:i]
	}
	p.inShare, p.shareIPC, p.tree, p.tidOK = true, ipc, tree, false
}

func (p *debugDataParser) endShare() {
	if !p.inShare {
		return
	}
	p.inShare = false
	server, share, ok := SplitUNC(p.tree)
	switch {
	case !ok:
		p.errs = append(p.errs, fmt.Errorf("share %q: not a \\\\server\\share name", p.tree))
	case !p.tidOK:
		p.errs = append(p.errs, fmt.Errorf("share %s: no tid line", p.tree))
	case !p.sesOK:
		p.errs = append(p.errs, fmt.Errorf("share %s: session without a SessionId line", p.tree))
	default:
		p.out.Shares = append(p.out.Shares, Share{
			SessionID: p.sesID, TreeID: p.tid, Server: server, Share: share,
			Address: p.sesAddr, IPC: p.shareIPC,
		})
	}
}

func (p *debugDataParser) endSession() {
	if p.inSession && !p.sesOK {
		p.errs = append(p.errs, fmt.Errorf("session at %q: no SessionId line", p.sesAddr))
	}
	p.inSession, p.sesOK, p.sesAddr = false, false, ""
}

func (p *debugDataParser) serverName() string {
	if p.hostname != "" {
		return p.hostname
	}
	return p.sesAddr
}

// SplitUNC splits a tree name \\server\share (or \\server\share\prefix for a DFS link)
// into its server and share parts.
func SplitUNC(tree string) (server, share string, ok bool) {
	rest, found := strings.CutPrefix(tree, `\\`)
	if !found {
		return "", "", false
	}
	server, share, found = strings.Cut(rest, `\`)
	if !found || server == "" || share == "" {
		return "", "", false
	}
	if i := strings.IndexByte(share, '\\'); i >= 0 {
		share = share[:i]
	}
	return server, share, share != ""
}

// cutItemNumber strips a list item number ("12) ") from the front of a trimmed line.
func cutItemNumber(line string) (string, bool) {
	i := 0
	for i < len(line) && line[i] >= '0' && line[i] <= '9' {
		i++
	}
	if i == 0 || i >= len(line) || line[i] != ')' {
		return line, false
	}
	return strings.TrimSpace(line[i+1:]), true
}

// fieldAfter returns the whitespace-delimited word after the label (a whole word) in line.
func fieldAfter(line, label string) string {
	fields := strings.Fields(line)
	for i, f := range fields {
		if f == label && i+1 < len(fields) {
			return fields[i+1]
		}
	}
	return ""
}
