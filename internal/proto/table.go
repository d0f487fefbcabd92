package proto

import (
	"fmt"
	"iter"
	"strings"
)

// Table is the data a protocol contributes to the protocol-neutral stages: the names
// of its commands and statuses, and the OpenTelemetry names its metrics and records
// carry. A protocol package fills one in and registers it with Register.
type Table struct {
	Protocol Protocol

	// Commands names the command codes, indexed by code; "" marks an unused code.
	// len(Commands) is the protocol's number of command codes, at most MaxCommands.
	Commands []string
	// CommandPrefix is the optional part of a command name in configuration files
	// ("SMB2_": both "SMB2_READ" and "READ" are accepted); may be empty.
	CommandPrefix string
	// UnknownCommandPrefix names a code the table does not list: prefix + decimal code.
	UnknownCommandPrefix string

	// StatusName names a failure status, or returns "" for one it does not list; it
	// must not allocate (it runs once per failed request).
	StatusName func(code uint32) string
	// LookupStatus returns the status a name stands for (aliases included).
	LookupStatus func(name string) (uint32, bool)

	// Port is the server's well-known TCP port, which the connection detector watches.
	Port uint16

	// MetricPrefix starts the protocol's metric and attribute names: Register
	// derives every empty field of Keys from it ("smb" gives
	// smb.client.operation.duration, smb.command, ...).
	MetricPrefix string
	// Keys are the OpenTelemetry names of the protocol's metrics and attributes.
	Keys Keys
	// DurationHelp and ErrorsHelp describe the two request metrics.
	DurationHelp, ErrorsHelp string
	// Requests names one request of the protocol in sentences ("SMB request"), and
	// CommandNoun one of its commands ("SMB2 command").
	Requests, CommandNoun string
	// ONCRPC names a command as the ONC RPC call it is: program name, version and
	// procedure, as /proc/self/mountstats and OpenTelemetry's onc_rpc.* attributes name
	// them; ok is false for a code that is no procedure of a known program. Nil for
	// protocols not carried by ONC RPC. It must not allocate.
	ONCRPC func(code uint16) (program string, version int, procedure string, ok bool)
	// AppendShare appends where a request went as the protocol's users write it,
	// share (which may be empty) on server; it must not allocate beyond dst. Register
	// sets it, when nil, to the server:/export form of NFS (AppendServerPath).
	AppendShare func(dst []byte, server, share string) []byte
}

// Keys are the OpenTelemetry names a protocol's metrics and records carry. Register
// fills each empty one as MetricPrefix + the suffix its comment gives.
type Keys struct {
	Duration string // metric: ".client.operation.duration"
	Errors   string // metric: ".client.errors"

	Server      string // "server.address" unless set: where a request went
	Command     string // ".command": the command name
	Share       string // ".share": the share or export a request went to
	Status      string // ".status": the raw failure status (event records)
	Rc          string // ".rc": the -errno the client mapped the status to (event records)
	OpDuration  string // ".operation.duration": one request's latency (event records)
	OpStartTime string // ".operation.start_time" (event records)
	SessionID   string // ".session.id"
	TreeID      string // ".tree.id"
	MessageID   string // ".message.id"
	ConnID      string // ".connection.id"
}

// derive fills every empty key from prefix.
func (k *Keys) derive(prefix string) {
	for _, f := range []struct {
		key    *string
		suffix string
	}{
		{&k.Duration, ".client.operation.duration"}, {&k.Errors, ".client.errors"},
		{&k.Command, ".command"}, {&k.Share, ".share"}, {&k.Status, ".status"}, {&k.Rc, ".rc"},
		{&k.OpDuration, ".operation.duration"}, {&k.OpStartTime, ".operation.start_time"},
		{&k.SessionID, ".session.id"}, {&k.TreeID, ".tree.id"}, {&k.MessageID, ".message.id"},
		{&k.ConnID, ".connection.id"},
	} {
		if *f.key == "" {
			*f.key = prefix + f.suffix
		}
	}
	if k.Server == "" {
		k.Server = "server.address"
	}
}

// MaxCommands bounds a protocol's command codes: a CommandSet holds codes below it.
const MaxCommands = 128

// CommandName returns the name of code, or "" when the table does not list it.
// It does not allocate.
func (t *Table) CommandName(code uint16) string {
	if int(code) >= len(t.Commands) {
		return ""
	}
	return t.Commands[code]
}

// NumCommands is the number of command codes of the protocol (listed or not):
// per-command arrays are this long.
func (t *Table) NumCommands() int { return len(t.Commands) }

// LookupCommand returns the code of a command name. The full name ("SMB2_WRITE") and
// the name without CommandPrefix ("WRITE") are both accepted, in upper case only, so a
// configuration written for AODv2 and a shorter hand-written one both work while a
// misspelling is still caught.
func (t *Table) LookupCommand(name string) (uint16, bool) {
	bare := strings.TrimPrefix(name, t.CommandPrefix)
	for code, n := range t.Commands {
		if n != "" && strings.TrimPrefix(n, t.CommandPrefix) == bare {
			return uint16(code), true
		}
	}
	return 0, false
}

// AllCommands yields every listed command code with its name, in code order.
func (t *Table) AllCommands() iter.Seq2[uint16, string] {
	return func(yield func(uint16, string) bool) {
		for code, name := range t.Commands {
			if name != "" && !yield(uint16(code), name) {
				return
			}
		}
	}
}

// CommandSet returns the set of every listed command code.
func (t *Table) CommandSet() CommandSet {
	var s CommandSet
	for code := range t.AllCommands() {
		s = s.With(code)
	}
	return s
}

// registry is written only by Register from package init functions, which happen
// before any other code reads it, so lookups need no lock (they run per event).
var registry [numProtocols]*Table

// commandNames holds each registered table's Commands, one load away for
// Command.String.
var commandNames [numProtocols][]string

// Register makes t the table of t.Protocol. Protocol packages call it from init, and
// only from init; a second table for the same protocol, or one with too many
// commands, is a programming error and panics.
func Register(t *Table) {
	switch {
	case t.Protocol == Unknown || int(t.Protocol) >= numProtocols:
		panic(fmt.Sprintf("proto: Register: no protocol %d", t.Protocol))
	case len(t.Commands) > MaxCommands:
		panic(fmt.Sprintf("proto: Register: %s has %d command codes, more than %d", t.Protocol, len(t.Commands), MaxCommands))
	case registry[t.Protocol] != nil:
		panic(fmt.Sprintf("proto: Register: %s registered twice", t.Protocol))
	case t.MetricPrefix == "":
		panic(fmt.Sprintf("proto: Register: %s has no MetricPrefix", t.Protocol))
	}
	t.Keys.derive(t.MetricPrefix)
	if t.AppendShare == nil {
		t.AppendShare = AppendServerPath
	}
	registry[t.Protocol] = t
	commandNames[t.Protocol] = t.Commands
}

// AppendServerPath appends server:path, or server alone when path is empty: how NFS
// names an export (mount's device field).
func AppendServerPath(dst []byte, server, path string) []byte {
	dst = append(dst, server...)
	if path != "" {
		dst = append(dst, ':')
		dst = append(dst, path...)
	}
	return dst
}

// Lookup returns the table of p, or nil when no package registered one.
func Lookup(p Protocol) *Table {
	if int(p) >= numProtocols {
		return nil
	}
	return registry[p]
}

// Tables yields every registered table, in protocol order.
func Tables() iter.Seq[*Table] {
	return func(yield func(*Table) bool) {
		for _, t := range registry {
			if t != nil && !yield(t) {
				return
			}
		}
	}
}

// TableOf returns the table of p, or for a protocol without one a table that names
// nothing (every command and status is shown by its code) and derives its keys from
// the protocol's name, so that output code never needs a nil check.
func TableOf(p Protocol) *Table {
	if t := Lookup(p); t != nil {
		return t
	}
	if int(p) < numProtocols {
		return bare[p]
	}
	return bareTable(p)
}

// bare holds the tables TableOf gives protocols without one, made once.
var bare = func() (b [numProtocols]*Table) {
	for p := range b {
		b[p] = bareTable(Protocol(p))
	}
	return b
}()

func bareTable(p Protocol) *Table {
	t := &Table{Protocol: p, MetricPrefix: p.String(), UnknownCommandPrefix: p.String() + "_CMD_",
		Requests: p.String() + " request", CommandNoun: p.String() + " command", AppendShare: AppendServerPath}
	t.Keys.derive(t.MetricPrefix)
	return t
}
