//go:build linux

package bpf

import (
	"errors"
	"testing"
)

func TestNFSNotLoadedNamesEveryHook(t *testing.T) {
	hooks := NFSNotLoaded(errors.New("load program: bad CO-RE relocation:\n\tverifier log"))
	if len(hooks) != len(nfsTracepoints) {
		t.Fatalf("%d hooks, want one per NFS tracepoint (%d)", len(hooks), len(nfsTracepoints))
	}
	for i, h := range hooks {
		if h.Protocol != "nfs" || h.Hook != nfsTracepoints[i].name || h.Attached || h.Reason != "programs not loaded: load program: bad CO-RE relocation:" {
			t.Errorf("hook %d: %+v", i, h)
		}
	}
}
