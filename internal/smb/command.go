package smb

import "github.com/linuxdiag/aod/internal/proto"

// NumCommands is the number of SMB2 command codes: SMB2_NEGOTIATE (0) to
// SMB2_SERVER_TO_CLIENT_NOTIFICATION (19).
const NumCommands = 20

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
	// ServerToClientNotification (SMB 3.1.1) is sent by the server unasked; AODv2
	// named it, so files that name it load.
	ServerToClientNotification uint16 = 19
)

// Table is SMB's entry in the protocol registry: SMB2 command names, NTSTATUS names,
// and the names of the smb.* metrics and attributes.
var Table = &proto.Table{
	Protocol: proto.SMB,
	Commands: []string{
		"SMB2_NEGOTIATE", "SMB2_SESSION_SETUP", "SMB2_LOGOFF", "SMB2_TREE_CONNECT",
		"SMB2_TREE_DISCONNECT", "SMB2_CREATE", "SMB2_CLOSE", "SMB2_FLUSH", "SMB2_READ",
		"SMB2_WRITE", "SMB2_LOCK", "SMB2_IOCTL", "SMB2_CANCEL", "SMB2_ECHO",
		"SMB2_QUERY_DIRECTORY", "SMB2_CHANGE_NOTIFY", "SMB2_QUERY_INFO", "SMB2_SET_INFO",
		"SMB2_OPLOCK_BREAK", "SMB2_SERVER_TO_CLIENT_NOTIFICATION",
	},
	CommandPrefix:        "SMB2_",
	UnknownCommandPrefix: "SMB2_CMD_",
	StatusName:           StatusName,
	LookupStatus:         LookupStatus,
	Port:                 445,
	MetricPrefix:         "smb",
	DurationHelp: "Duration of SMB requests the kernel client completed, measured in the kernel " +
		"from smb3_cmd_enter to smb3_cmd_done or smb3_cmd_err; failed requests carry error.type.",
	ErrorsHelp:  "SMB requests that failed, by NTSTATUS, counted in the kernel.",
	Requests:    "SMB request",
	CommandNoun: "SMB2 command",
	AppendShare: appendUNC,
}

// appendUNC appends \\server\share, as Windows and the cifs client name a share.
func appendUNC(dst []byte, server, share string) []byte {
	dst = append(dst, `\\`...)
	dst = append(dst, server...)
	if share != "" {
		dst = append(dst, '\\')
		dst = append(dst, share...)
	}
	return dst
}

func init() { proto.Register(Table) }

// Command returns the named command of an SMB2 command code.
func Command(code uint16) proto.Command { return proto.Command{Protocol: proto.SMB, Code: code} }

// Status returns the named status of an NTSTATUS value.
func Status(code uint32) proto.Status { return proto.Status{Protocol: proto.SMB, Code: code} }
