package main

import (
	"testing"

	"github.com/linuxdiag/aod/bpf"
)

func TestTopHooksLine(t *testing.T) {
	for _, c := range []struct {
		hooks []bpf.HookStatus
		want  string
	}{
		{nil, "probes: none attached yet (waiting for the cifs and sunrpc modules)"},
		// Debian 5.10, as its agent reported it.
		{[]bpf.HookStatus{
			{Protocol: "smb", Hook: "smb3_cmd_enter", Attached: true},
			{Protocol: "smb", Hook: "smb3_cmd_done", Attached: true},
			{Protocol: "smb", Hook: "smb3_reconnect", Reason: "fewer arguments than expected (older cifs?): invalid argument"},
			{Protocol: "smb", Hook: "smb3_connect_done", Reason: "not in this kernel: no such file or directory"},
			{Protocol: "nfs", Hook: "rpc_stats_latency", Reason: "programs not loaded: bad CO-RE relocation"},
			{Protocol: "nfs", Hook: "nfs_xdr_status", Reason: "programs not loaded: bad CO-RE relocation"},
		}, "probes: smb 2/4 attached, not: smb3_reconnect (fewer arguments than expected (older cifs?): invalid argument), " +
			"smb3_connect_done (not in this kernel: no such file or directory); nfs 0/2 attached, not: " +
			"rpc_stats_latency (programs not loaded: bad CO-RE relocation), nfs_xdr_status (programs not loaded: bad CO-RE relocation)"},
		{[]bpf.HookStatus{{Protocol: "smb", Hook: "smb3_cmd_enter", Attached: true}, {Protocol: "nfs", Hook: "rpc_stats_latency", Attached: true}},
			"probes: smb 1/1 attached; nfs 1/1 attached"},
	} {
		if got := hooksLine(c.hooks); got != c.want {
			t.Errorf("hooksLine:\n got %s\nwant %s", got, c.want)
		}
	}
}
