package detector

import (
	"encoding/binary"
	"io/fs"
	"os"
	"reflect"
	"time"

	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/smb"
)

// fakeClock is a settable clock: wall time is epoch + monotonic time.
type fakeClock struct{ mono uint64 }

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func (c *fakeClock) Now() time.Time    { return epoch.Add(time.Duration(c.mono)) }
func (c *fakeClock) Monotonic() uint64 { return c.mono }
func (c *fakeClock) Time(mono uint64) time.Time {
	return epoch.Add(time.Duration(mono))
}

// testEnv returns an Env with a fake clock, sequential ids and a share resolver that
// knows tree 1 of session 7.
func testEnv(c *fakeClock) Env {
	var n uint64
	return Env{
		Protocol: proto.SMB,
		Clock:    c,
		Share: func(session uint64, tree uint32) string {
			if session == 7 && tree == 1 {
				return `\\srv\data`
			}
			return ""
		},
		NewIDs: func() (tr [16]byte, sp [8]byte) {
			n++
			binary.BigEndian.PutUint64(tr[8:], n)
			binary.BigEndian.PutUint64(sp[:], n)
			return tr, sp
		},
	}
}

const ms = time.Millisecond

// at returns a monotonic time in ns, offset from a base far from zero.
func at(d time.Duration) uint64 { return uint64(time.Hour + d) }

// slow is a slow request of cmd that ended at end and took lat.
func slow(cmd uint16, end, lat time.Duration) event.Event {
	e := event.Event{Protocol: proto.SMB, Kind: event.KindSlow, Command: cmd, SessionID: 7, TreeID: 1, Pid: 42, Tgid: 42,
		StartNs: at(end) - uint64(lat), EndNs: at(end)}
	copy(e.Comm[:], "fio")
	return e
}

// failed is a failed request of cmd with an NTSTATUS and -errno, ending at end.
func failed(cmd uint16, status uint32, errno int32, end time.Duration) event.Event {
	e := slow(cmd, end, ms)
	e.Kind, e.Status, e.Rc = event.KindError, status, -errno
	return e
}

func status(name string) uint32 {
	s, ok := smb.LookupStatus(name)
	if !ok {
		panic("unknown status " + name)
	}
	return s
}

// allCommands resolves AODv2's mode "all" with one default threshold.
func allCommands(th time.Duration) [proto.MaxCommands]CommandThreshold {
	var c [proto.MaxCommands]CommandThreshold
	for i := range smb.NumCommands {
		c[i] = CommandThreshold{Tracked: true, Threshold: th}
	}
	return c
}

// equal compares with reflect.DeepEqual, for test assertions on composite values.
func equal(a, b any) bool { return reflect.DeepEqual(a, b) }

// dirFS is os.DirFS, named for the tests that swap proc roots.
func dirFS(dir string) fs.FS { return os.DirFS(dir) }
