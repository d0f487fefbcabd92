package bundler

import (
	"slices"
	"testing"

	"github.com/linuxdiag/aod/internal/actions"
	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/proto"
)

// An io bundle gets its configured actions, the io ones every bundle gets, and the
// SMB or NFS client's actions when its failures hit a mount of that client.
func TestIOBundleActionsFollowTheFailingMounts(t *testing.T) {
	b := &Bundler{o: Options{Actions: map[Key][]string{{"io", anomaly.TypeError}: {"dmesg", "mounts"}}}}
	ioEvent := func(magic uint32) event.Event {
		return event.Event{Protocol: proto.IO, Kind: event.KindError, TreeID: magic}
	}
	base := []string{"dmesg", "mounts", actions.NameEvents}
	for _, c := range []struct {
		name   string
		magics []uint32
		want   []string
	}{
		{"local file system", []uint32{0xEF53}, base},
		{"cifs", []uint32{0xEF53, 0xFF534D42}, append(slices.Clone(base), actions.ForMounts[proto.SMB]...)},
		{"nfs and smb3", []uint32{0x6969, 0xFE534D42}, append(append(slices.Clone(base), actions.ForMounts[proto.SMB]...), actions.NameMountstats, actions.NameNFSRPC, actions.NameNFSTasks, actions.NameNfsstat)},
	} {
		a := &anomaly.Anomaly{Protocol: "io", Type: anomaly.TypeError}
		for _, m := range c.magics {
			a.Events = append(a.Events, ioEvent(m))
		}
		if got := b.actionsFor(a); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
