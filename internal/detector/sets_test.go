package detector

import (
	"slices"
	"testing"
	"time"

	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/nfs"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/smb"
)

// Sets.Process hands a chunk only to the sets of the protocols in it; a protocol's
// one failure among another's events, in any chunk, still reaches its set.
func TestSetsProcessHandsEachProtocolItsEvents(t *testing.T) {
	c, _, err := config.Parse("sets.yaml", []byte(`
anomalies:
  smb:
    error: {tool: smbiosnoop, rules: [{name: timeouts, acceptable_count: 1, track_errors: [STATUS_IO_TIMEOUT]}]}
  nfs:
    error: {tool: nfsiosnoop, rules: [{name: stale, acceptable_count: 1, track_errors: [NFS4ERR_STALE]}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	sets, err := NewSets(c, func(proto.Protocol) Env { return testEnv(&fakeClock{}) })
	if err != nil {
		t.Fatal(err)
	}
	stale, _ := nfs.LookupStatus("NFS4ERR_STALE")
	batch := make([]event.Event, 3*processChunk)
	for i := range batch {
		batch[i] = slow(smb.Read, time.Duration(i)*ms, ms) // under every threshold
	}
	last := len(batch) - 1
	batch[processChunk+7] = failed(nfs.V4GetAttr, stale, 116, time.Duration(processChunk+7)*ms)
	batch[processChunk+7].Protocol = proto.NFS
	batch[last] = failed(smb.Read, status("STATUS_IO_TIMEOUT"), 110, time.Duration(last)*ms)
	var got []string
	for _, a := range sets.Process(batch, nil) {
		got = append(got, a.Protocol+"/"+a.Rule)
	}
	if want := []string{"nfs/stale", "smb/timeouts"}; !slices.Equal(got, want) {
		t.Errorf("anomalies %v, want %v", got, want)
	}
}
