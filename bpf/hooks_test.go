package bpf

import (
	"errors"
	"slices"
	"testing"
)

func TestAttachReportHooks(t *testing.T) {
	replaced := errors.New("detached: the fallback measures requests")
	r := AttachReport{
		Tracepoints: []TracepointStatus{
			{Name: "smb3_cmd_enter", Required: true, Err: replaced},
			{Name: "smb3_reconnect", Err: errors.New("fewer arguments than expected (older cifs?): invalid argument")},
			{Name: "smb3_connect_done", Attached: true},
			{Name: "smb3_connect_err"}, // not attached, no reason recorded
		},
		Fallback: []FunctionStatus{{Name: "smb2_mid_entry_alloc", Attached: true}},
	}
	want := []HookStatus{
		{Protocol: "smb", Hook: "smb3_cmd_enter", Reason: replaced.Error()},
		{Protocol: "smb", Hook: "smb3_reconnect", Reason: "fewer arguments than expected (older cifs?): invalid argument"},
		{Protocol: "smb", Hook: "smb3_connect_done", Attached: true},
		{Protocol: "smb", Hook: "smb3_connect_err", Reason: "not attached"},
		{Protocol: "smb", Hook: "fexit/smb2_mid_entry_alloc", Attached: true},
	}
	if got := r.Hooks("smb"); !slices.Equal(got, want) {
		t.Errorf("hooks\n%+v\nwant\n%+v", got, want)
	}
}
