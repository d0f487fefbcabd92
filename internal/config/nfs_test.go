package config

import (
	"slices"
	"testing"

	"github.com/linuxdiag/aod/internal/nfs"
)

// TestNFSNamesAreCanonical: NFS procedure and status names are checked against the
// NFS table and written the one way the table names them, so a bare procedure name
// and an NFSv3 status alias select the same codes as the full names.
func TestNFSNamesAreCanonical(t *testing.T) {
	src := `anomalies:
  nfs:
    latency:
      mode: trackonly
      acceptable_count: 1
      track_commands:
        - command: READ
          threshold: 20
        - command: NFS3PROC_WRITE
    error:
      acceptable_count: 1
      track_errors: [NFS3ERR_NOTEMPTY, ETIMEDOUT]
`
	cfg, _, err := Parse("nfs.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Anomalies.NFS.Latency
	if got := []string{l.TrackCommands[0].Command, l.TrackCommands[1].Command}; !slices.Equal(got, []string{"NFSPROC4_CLNT_READ", "NFS3PROC_WRITE"}) {
		t.Errorf("track_commands %v", got)
	}
	if cmds := l.Commands(nfs.Table); cmds.Len() != 2 || !cmds.Has(nfs.V4Read) || !cmds.Has(nfs.V3Write) {
		t.Errorf("latency watches %d procedures, want READ (v4) and WRITE (v3)", cmds.Len())
	}
	r := cfg.Anomalies.NFS.Error.Rules[0]
	if !slices.Equal(r.TrackErrors, []string{"NFS4ERR_NOTEMPTY", "ETIMEDOUT"}) {
		t.Errorf("track_errors %v", r.TrackErrors)
	}
	if m := r.Match(nfs.Table); len(m.Statuses) != 2 || !slices.Contains(m.Statuses, 66) {
		t.Errorf("the rule matches statuses %v, want NOTEMPTY (66) and ETIMEDOUT's", m.Statuses)
	}
}
