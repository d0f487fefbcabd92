package proto_test

import (
	"slices"
	"testing"

	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/smb"
)

func TestProtocolNames(t *testing.T) {
	for _, p := range []proto.Protocol{proto.SMB, proto.NFS, proto.IO} {
		got, ok := proto.ParseProtocol(p.String())
		if !ok || got != p {
			t.Errorf("ParseProtocol(%q) = %v, %v; want %v", p.String(), got, ok, p)
		}
	}
	if got := proto.Protocol(9).String(); got != "protocol-9" {
		t.Errorf("Protocol(9) = %q", got)
	}
	for _, bad := range []string{"", "SMB", "cifs", "protocol-9"} {
		if p, ok := proto.ParseProtocol(bad); ok {
			t.Errorf("ParseProtocol(%q) = %v, want not found", bad, p)
		}
	}
}

// Every String has its inverse: known and unknown commands and statuses, for a
// registered protocol and for one without a table.
func TestStringParseRoundTrip(t *testing.T) {
	for _, c := range []proto.Command{smb.Command(smb.Read), smb.Command(smb.OplockBreak), smb.Command(77), {Protocol: proto.SMB, Code: 65535}} {
		s := c.String()
		got, ok := proto.ParseCommand(c.Protocol, s)
		if !ok || got != c {
			t.Errorf("ParseCommand(%q) = %v, %v; want %v", s, got, ok, c)
		}
	}
	if got := smb.Command(77).String(); got != "SMB2_CMD_77" {
		t.Errorf("unknown command = %q", got)
	}
	if got := (proto.Command{Protocol: proto.IO, Code: 3}).String(); got != "io_CMD_3" {
		t.Errorf("command of a protocol without a table = %q", got)
	}
	for _, s := range []proto.Status{smb.Status(0xc0000011), smb.Status(0xc0fe0999), smb.Status(0), {Protocol: proto.NFS, Code: 10013}} {
		name := s.String()
		got, ok := proto.ParseStatus(s.Protocol, name)
		if !ok || got != s {
			t.Errorf("ParseStatus(%q) = %v, %v; want %v", name, got, ok, s)
		}
	}
	if got := smb.Status(0xc0fe0999).String(); got != "0xc0fe0999" {
		t.Errorf("unknown status = %q", got)
	}
	if got := (proto.Status{Protocol: proto.NFS, Code: 0x10}).String(); got != "0x00000010" {
		t.Errorf("status without a table = %q", got)
	}
	for _, bad := range []string{"", "SMB2_CMD_", "SMB2_CMD_x", "SMB2_CMD_70000", "READX"} {
		if c, ok := proto.ParseCommand(proto.SMB, bad); ok {
			t.Errorf("ParseCommand(%q) = %v, want not found", bad, c)
		}
	}
	for _, bad := range []string{"", "0x", "0xZZ", "STATUS_NOPE", "0x100000000"} {
		if s, ok := proto.ParseStatus(proto.SMB, bad); ok {
			t.Errorf("ParseStatus(%q) = %v, want not found", bad, s)
		}
	}
}

func TestCommandSet(t *testing.T) {
	var s proto.CommandSet
	s = s.With(smb.Read).With(smb.Write).With(smb.Write).With(100).With(proto.MaxCommands)
	if !s.Has(smb.Read) || !s.Has(smb.Write) || s.Has(smb.Create) || !s.Has(100) || s.Has(proto.MaxCommands) || s.Len() != 3 {
		t.Fatalf("set %v: wrong membership", s)
	}
	s = s.Without(smb.Read)
	if got := slices.Collect(s.All()); !slices.Equal(got, []uint16{smb.Write, 100}) {
		t.Errorf("All() = %v, want [%d 100]", got, smb.Write)
	}
	all := smb.Table.CommandSet()
	if s.SubsetOf(all) || !s.Without(100).SubsetOf(all) || s.IsEmpty() || !(proto.CommandSet{}).IsEmpty() {
		t.Errorf("SubsetOf/IsEmpty wrong for %v against %v", s, all)
	}
}

func TestRegisterRejectsMistakes(t *testing.T) {
	for name, tab := range map[string]*proto.Table{
		"twice":       {Protocol: proto.SMB, MetricPrefix: "smb"},
		"no protocol": {Protocol: proto.Unknown},
		"too many":    {Protocol: proto.IO, MetricPrefix: "io", Commands: make([]string, proto.MaxCommands+1)},
		"no prefix":   {Protocol: proto.IO},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: Register did not panic", name)
				}
			}()
			proto.Register(tab)
		}()
	}
}

func BenchmarkCommandString(b *testing.B) {
	c := smb.Command(smb.Read)
	for b.Loop() {
		_ = c.String()
	}
}

func BenchmarkStatusString(b *testing.B) {
	s := smb.Status(0xc0000034)
	for b.Loop() {
		_ = s.String()
	}
}

func TestKeysDerivedFromPrefix(t *testing.T) {
	k := smb.Table.Keys
	for got, want := range map[string]string{
		k.Duration: "smb.client.operation.duration", k.Errors: "smb.client.errors", k.Command: "smb.command",
		k.Share: "smb.share", k.Status: "smb.status", k.Rc: "smb.rc", k.OpDuration: "smb.operation.duration",
		k.OpStartTime: "smb.operation.start_time", k.SessionID: "smb.session.id", k.TreeID: "smb.tree.id",
		k.MessageID: "smb.message.id", k.ConnID: "smb.connection.id",
	} {
		if got != want {
			t.Errorf("key %q, want %q", got, want)
		}
	}
}
