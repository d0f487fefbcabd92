package smb

import (
	"iter"
	"math/bits"
	"strings"
)

// NumCommands is the number of SMB2 command codes: SMB2_NEGOTIATE (0) to
// SMB2_OPLOCK_BREAK (18).
const NumCommands = 19

// SMB2 command codes (MS-SMB2 2.2.1), as carried in the cmd field of the cifs
// smb3_cmd_* tracepoints.
const (
	Negotiate      uint16 = 0
	SessionSetup   uint16 = 1
	Logoff         uint16 = 2
	TreeConnect    uint16 = 3
	TreeDisconnect uint16 = 4
	Create         uint16 = 5
	Close          uint16 = 6
	Flush          uint16 = 7
	Read           uint16 = 8
	Write          uint16 = 9
	Lock           uint16 = 10
	Ioctl          uint16 = 11
	Cancel         uint16 = 12
	Echo           uint16 = 13
	QueryDirectory uint16 = 14
	ChangeNotify   uint16 = 15
	QueryInfo      uint16 = 16
	SetInfo        uint16 = 17
	OplockBreak    uint16 = 18
)

// CommandPrefix starts every canonical command name.
const CommandPrefix = "SMB2_"

var commandNames = [NumCommands]string{
	"SMB2_NEGOTIATE", "SMB2_SESSION_SETUP", "SMB2_LOGOFF", "SMB2_TREE_CONNECT",
	"SMB2_TREE_DISCONNECT", "SMB2_CREATE", "SMB2_CLOSE", "SMB2_FLUSH", "SMB2_READ",
	"SMB2_WRITE", "SMB2_LOCK", "SMB2_IOCTL", "SMB2_CANCEL", "SMB2_ECHO",
	"SMB2_QUERY_DIRECTORY", "SMB2_CHANGE_NOTIFY", "SMB2_QUERY_INFO", "SMB2_SET_INFO",
	"SMB2_OPLOCK_BREAK",
}

// CommandName returns the canonical name of an SMB2 command code ("SMB2_READ"), or ""
// when code is not an SMB2 command. It does not allocate.
func CommandName(code uint16) string {
	if code >= NumCommands {
		return ""
	}
	return commandNames[code]
}

// LookupCommand returns the code of a command name. Both the canonical spelling
// ("SMB2_WRITE") and the bare one ("WRITE") are accepted, in upper case only, so a
// configuration written for AODv2 and a shorter hand-written one both work while a
// misspelling is still caught.
func LookupCommand(name string) (uint16, bool) {
	bare := strings.TrimPrefix(name, CommandPrefix)
	for code, n := range commandNames {
		if n[len(CommandPrefix):] == bare {
			return uint16(code), true
		}
	}
	return 0, false
}

// Commands yields every command code with its canonical name, in code order.
func Commands() iter.Seq2[uint16, string] {
	return func(yield func(uint16, string) bool) {
		for code, name := range commandNames {
			if !yield(uint16(code), name) {
				return
			}
		}
	}
}

// CommandSet is a set of SMB2 command codes, one bit per code. The zero value is
// empty. Has is a single bit test, cheap enough for every event.
type CommandSet uint32

// AllCommands contains every SMB2 command.
const AllCommands CommandSet = 1<<NumCommands - 1

// With returns s plus code; codes that are not SMB2 commands are ignored.
func (s CommandSet) With(code uint16) CommandSet {
	if code >= NumCommands {
		return s
	}
	return s | 1<<code
}

// Without returns s minus code.
func (s CommandSet) Without(code uint16) CommandSet {
	if code >= NumCommands {
		return s
	}
	return s &^ (1 << code)
}

// Has reports whether code is in s.
func (s CommandSet) Has(code uint16) bool { return code < NumCommands && s&(1<<code) != 0 }

// Len returns the number of commands in s.
func (s CommandSet) Len() int { return bits.OnesCount32(uint32(s & AllCommands)) }

// All yields the codes in s in ascending order.
func (s CommandSet) All() iter.Seq[uint16] {
	return func(yield func(uint16) bool) {
		for code := uint16(0); code < NumCommands; code++ {
			if s.Has(code) && !yield(code) {
				return
			}
		}
	}
}
