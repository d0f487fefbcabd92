package config

import (
	"slices"
	"testing"

	fileio "github.com/linuxdiag/aod/internal/io"
)

// TestIONamesAreCanonical: io operation names are AODv2's, errno names are checked and
// an alias is made the canonical name, and a rule selects exactly its codes.
func TestIONamesAreCanonical(t *testing.T) {
	src := `anomalies:
  io:
    error:
      tool: iosnoop
      rules:
        - name: severe
          acceptable_count: 3
          track_errors: [EIO, ENXIO, ENODEV, ENOSPC, EROFS, EDQUOT, ESTALE]
        - name: lock-contention-burst
          acceptable_count: 50
          track_commands: [LOCK_FCNTL]
          track_errors: [EACCES, EWOULDBLOCK]
`
	cfg, _, err := Parse("io.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Anomalies.IO.Error
	if e == nil || len(e.Rules) != 2 || e.Tool != "iosnoop" {
		t.Fatalf("io error anomaly %+v", e)
	}
	lock := e.Rules[1]
	if !slices.Equal(lock.TrackErrors, []string{"EACCES", "EAGAIN"}) {
		t.Errorf("track_errors %v, want EWOULDBLOCK as EAGAIN", lock.TrackErrors)
	}
	m := lock.Match(fileio.Table)
	if !slices.Equal(m.Commands, []uint16{fileio.LockFcntl}) || !slices.Equal(m.Statuses, []uint32{11, 13}) {
		t.Errorf("the rule matches commands %v statuses %v", m.Commands, m.Statuses)
	}
	if m := e.Rules[0].Match(fileio.Table); len(m.Commands) != 0 || len(m.Statuses) != 7 || !slices.Contains(m.Statuses, 116) {
		t.Errorf("severe matches commands %v statuses %v", m.Commands, m.Statuses)
	}
}
