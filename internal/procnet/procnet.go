// Package procnet parses the kernel's TCP socket tables, /proc/net/tcp and
// /proc/net/tcp6, the same source ss and netstat read.
package procnet

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
)

// StateEstablished is TCP_ESTABLISHED in the tables' st column.
const StateEstablished = 0x01

// Conn is one row of a TCP table.
type Conn struct {
	Local, Remote netip.AddrPort
	State         uint8 // TCP state, as include/net/tcp_states.h numbers it
	// The columns after st, zero when a row stops at st.
	TxQueue, RxQueue uint32 // bytes queued to send and received unread (tx_queue:rx_queue)
	Retransmits      uint32 // retransmission timeouts not yet recovered (retrnsmt)
	UID              uint32 // owner of the socket
	Inode            uint64 // the socket's inode, as /proc/<pid>/fd links name it ("socket:[N]")
}

// stateNames are ss's names of the TCP states, by include/net/tcp_states.h number.
var stateNames = [...]string{1: "ESTAB", 2: "SYN-SENT", 3: "SYN-RECV", 4: "FIN-WAIT-1", 5: "FIN-WAIT-2",
	6: "TIME-WAIT", 7: "UNCONN", 8: "CLOSE-WAIT", 9: "LAST-ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW-SYN-RECV"}

// StateName names a TCP state as ss does ("ESTAB"), or in hex when it is unknown.
func StateName(st uint8) string {
	if int(st) < len(stateNames) && stateNames[st] != "" {
		return stateNames[st]
	}
	return fmt.Sprintf("0x%02X", st)
}

// Parse appends the rows of a /proc/net/tcp or /proc/net/tcp6 table to dst. An empty
// input is an empty table. Any malformed row fails the whole table, naming the line:
// a partial table would make present connections look gone.
func Parse(data []byte, dst []Conn) ([]Conn, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return dst, nil
	}
	header, rest, _ := bytes.Cut(data, []byte("\n"))
	if f := bytes.Fields(header); len(f) < 4 || string(f[0]) != "sl" {
		return dst, fmt.Errorf("line 1: not a TCP table header: %.60q", header)
	}
	for n := 2; len(rest) > 0; n++ {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		c, err := parseRow(line)
		if err != nil {
			return dst, fmt.Errorf("line %d: %w", n, err)
		}
		dst = append(dst, c)
	}
	return dst, nil
}

// parseRow reads "sl: local remote st tx:rx tr:when retrnsmt uid timeout inode ..."
// (the columns after st when present) and ignores the later, per-state ones.
func parseRow(line []byte) (Conn, error) {
	f := bytes.Fields(line)
	if len(f) < 4 || len(f[0]) < 2 || f[0][len(f[0])-1] != ':' {
		return Conn{}, fmt.Errorf("not a TCP table row: %.80q", line)
	}
	local, err := parseAddrPort(f[1])
	if err != nil {
		return Conn{}, fmt.Errorf("local address: %w", err)
	}
	remote, err := parseAddrPort(f[2])
	if err != nil {
		return Conn{}, fmt.Errorf("remote address: %w", err)
	}
	st, err := strconv.ParseUint(string(f[3]), 16, 8)
	if err != nil || len(f[3]) != 2 {
		return Conn{}, fmt.Errorf("state %.10q is not two hex digits", f[3])
	}
	c := Conn{Local: local, Remote: remote, State: uint8(st)}
	if len(f) < 10 {
		return c, nil
	}
	num := func(name string, b []byte, base, bits int) uint64 {
		n, e := strconv.ParseUint(string(b), base, bits)
		if e != nil && err == nil {
			err = fmt.Errorf("%s column %.20q is not a number", name, b)
		}
		return n
	}
	tx, rx, _ := bytes.Cut(f[4], []byte(":")) // without the colon rx is empty: an error
	c.TxQueue = uint32(num("tx_queue", tx, 16, 32))
	c.RxQueue = uint32(num("rx_queue", rx, 16, 32))
	c.Retransmits = uint32(num("retrnsmt", f[6], 16, 32))
	c.UID = uint32(num("uid", f[7], 10, 32))
	c.Inode = num("inode", f[9], 10, 64)
	if err != nil {
		return Conn{}, err
	}
	return c, nil
}

// parseAddrPort reads "ADDR:PORT". The kernel prints each 32-bit word of the address
// as a native-endian number in hex (%08X), and the port in host order (%04X).
func parseAddrPort(s []byte) (netip.AddrPort, error) {
	a, p, ok := bytes.Cut(s, []byte(":"))
	if !ok || len(p) != 4 {
		return netip.AddrPort{}, fmt.Errorf("%.50q is not ADDR:PORT", s)
	}
	port, err := strconv.ParseUint(string(p), 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q: not hex", p)
	}
	var raw [16]byte
	switch len(a) {
	case 8, 32:
	default:
		return netip.AddrPort{}, fmt.Errorf("address %.40q: want 8 or 32 hex digits", a)
	}
	for i := 0; i < len(a); i += 8 {
		w, err := strconv.ParseUint(string(a[i:i+8]), 16, 32)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("address %q: not hex", a)
		}
		binary.NativeEndian.PutUint32(raw[i/2:], uint32(w))
	}
	var addr netip.Addr
	if len(a) == 8 {
		addr = netip.AddrFrom4([4]byte(raw[:4]))
	} else {
		addr = netip.AddrFrom16(raw).Unmap()
	}
	return netip.AddrPortFrom(addr, uint16(port)), nil
}
