// Package proto is what every stage of aod knows about a protocol without knowing
// which one it is: the protocol's identity, its commands and statuses as named values,
// and the name tables each protocol package (internal/smb, and later nfs and io)
// registers. The event model, the metrics builder, the detectors and the bundles take a
// Protocol and look its Table up here, so adding a protocol adds a table, not a stage.
package proto

import (
	"strconv"
	"strings"
)

// Protocol identifies a family of requests aod watches. The values are shared with
// the BPF programs (bpf/include/aod.h), which stamp every ring record with one.
type Protocol uint8

// Protocols, with the names AODv2's configuration uses for them.
const (
	Unknown Protocol = 0
	SMB     Protocol = 1 // the cifs client (SMB2/SMB3)
	NFS     Protocol = 2 // the NFS client (NFSv3, NFSv4.x)
	IO      Protocol = 3 // failed file operations on any mount
	// numProtocols bounds the registry; raise it with the list above.
	numProtocols = 4
)

var protocolNames = [numProtocols]string{"", "smb", "nfs", "io"}

// String returns the protocol's configuration name ("smb"), or "protocol-<n>" for a
// value no protocol has.
func (p Protocol) String() string {
	if int(p) < numProtocols && protocolNames[p] != "" {
		return protocolNames[p]
	}
	return "protocol-" + strconv.Itoa(int(p))
}

// Valid reports whether p is one of the protocols above.
func (p Protocol) Valid() bool { return p > Unknown && p < numProtocols }

// ParseProtocol is the inverse of String for the named protocols.
func ParseProtocol(name string) (Protocol, bool) {
	for p, n := range protocolNames {
		if n != "" && n == name {
			return Protocol(p), true
		}
	}
	return Unknown, false
}

// Command is one request type of a protocol: an SMB2 command code, an NFS procedure,
// a file operation. It is a value of two small integers, cheap to keep per event.
type Command struct {
	Protocol Protocol
	Code     uint16
}

// String returns the command's name in its protocol's table ("SMB2_READ"), or the
// table's name for an unlisted code ("SMB2_CMD_19"); ParseCommand reads either back.
// Known names are constants, so String does not allocate for them.
func (c Command) String() string {
	// The common case first, small enough to inline: it runs once per exported
	// series and event record.
	if int(c.Protocol) < numProtocols {
		if names := commandNames[c.Protocol]; int(c.Code) < len(names) && names[c.Code] != "" {
			return names[c.Code]
		}
	}
	return c.unlisted()
}

// unlisted names a code the protocol's table does not list.
func (c Command) unlisted() string {
	return TableOf(c.Protocol).UnknownCommandPrefix + strconv.Itoa(int(c.Code))
}

// ParseCommand is the inverse of Command.String: a name from p's table (spelled as the
// table accepts it, see Table.LookupCommand) or the table's name for an unlisted code.
func ParseCommand(p Protocol, name string) (Command, bool) {
	t := TableOf(p)
	if code, ok := t.LookupCommand(name); ok {
		return Command{p, code}, true
	}
	if n, ok := strings.CutPrefix(name, t.UnknownCommandPrefix); ok {
		if code, err := strconv.ParseUint(n, 10, 16); err == nil {
			return Command{p, uint16(code)}, true
		}
	}
	return Command{}, false
}

// Status is how a request of a protocol failed, in the protocol's own terms: an
// NTSTATUS for SMB, an NFS status for NFS, an errno for io.
type Status struct {
	Protocol Protocol
	Code     uint32
}

// String returns the status's name in its protocol's table ("STATUS_END_OF_FILE"), or
// its code in hexadecimal ("0xc0000999") when the table does not list it;
// ParseStatus reads either back.
func (s Status) String() string {
	if t := Lookup(s.Protocol); t != nil && t.StatusName != nil {
		if n := t.StatusName(s.Code); n != "" {
			return n
		}
	}
	return "0x" + hex8(s.Code)
}

// ParseStatus is the inverse of Status.String.
func ParseStatus(p Protocol, name string) (Status, bool) {
	if t := Lookup(p); t != nil && t.LookupStatus != nil {
		if code, ok := t.LookupStatus(name); ok {
			return Status{p, code}, true
		}
	}
	if n, ok := strings.CutPrefix(name, "0x"); ok && n != "" {
		if code, err := strconv.ParseUint(n, 16, 32); err == nil {
			return Status{p, uint32(code)}, true
		}
	}
	return Status{}, false
}

// hex8 formats v as eight lower-case hexadecimal digits, as the kernel prints
// NTSTATUS values.
func hex8(v uint32) string {
	s := strconv.FormatUint(uint64(v), 16)
	return strings.Repeat("0", 8-len(s)) + s
}
