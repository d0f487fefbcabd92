package agent

import (
	"testing"
	"time"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/detector"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/smb"
)

func TestKernelFilters(t *testing.T) {
	var lat detector.LatencyParams
	lat.Commands[smb.Read] = detector.CommandThreshold{Tracked: true, Threshold: 20 * time.Millisecond}
	lat.Commands[smb.Create] = detector.CommandThreshold{Tracked: true, Threshold: 5 * time.Second}
	p := detector.Params{
		Latency: &lat,
		Errors: &detector.ErrorParams{Rules: []detector.ErrorRule{
			{Name: "a", Statuses: []uint32{0xc00000b5, 0xc0000034}},
			{Name: "b", Statuses: []uint32{0xc0000034}, Errnos: []int32{5}},
		}},
	}
	th, ef := kernelFilters(p)
	if got := th[smb.Read]; got != (bpf.Threshold{Tracked: true, Latency: 20 * time.Millisecond}) {
		t.Errorf("READ: %+v", got)
	}
	// A threshold above the single-request ceiling is lowered to it: either can fire.
	if got := th[smb.Create]; got != (bpf.Threshold{Tracked: true, Latency: detector.DefaultCeiling}) {
		t.Errorf("CREATE: %+v", got)
	}
	if th[smb.Write].Tracked {
		t.Error("WRITE is not tracked by the detector but is in the kernel")
	}
	if ef.All || len(ef.Statuses) != 2 || ef.Statuses[0] != 0xc0000034 || len(ef.Errnos) != 1 {
		t.Errorf("error filter = %+v, want the union of the rules' statuses and errnos", ef)
	}

	// A rule with no error axis matches every failure.
	p.Errors.Rules = append(p.Errors.Rules, detector.ErrorRule{Name: "any", Commands: proto.CommandSet{}.With(smb.Write)})
	if _, ef := kernelFilters(p); !ef.All {
		t.Errorf("error filter = %+v, want all", ef)
	}
	// A negative ceiling turns it off: the command's own threshold stands.
	lat.Ceiling = -1
	if th, _ := kernelFilters(p); th[smb.Create].Latency != 5*time.Second {
		t.Errorf("CREATE without ceiling: %+v", th[smb.Create])
	}
}
