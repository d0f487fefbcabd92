package bundler

import (
	"os"
	"slices"
	"testing"

	"github.com/linuxdiag/aod/internal/capture"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/fixtures"
)

func TestFromConfigAODv2File(t *testing.T) {
	data, err := os.ReadFile(fixtures.Path("aodv2/aodv2-2026-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := config.Parse("aodv2-2026-config.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	o := FromConfig(c)
	if o.OutputDir != "/var/log/aod" || o.MaxTotalBytes != 1024<<20 || o.CleanupInterval.Seconds() != 300 ||
		o.MaxAge.Hours() != 48 || o.ZstdLevel != c.Bundle.ZstdLevel || o.MinFreeBytes != c.Bundle.MinFree ||
		o.MaxActionBytes != c.Collection.MaxOutput || o.Lookback != c.Collection.Lookback {
		t.Fatalf("options %+v", o)
	}
	want := map[Key][]string{
		{"smb", "latency"}:  {"dmesg", "journalctl", "debugdata", "stats", "mounts", "smbinfo", "syslogs", "tcpdump"},
		{"smb", "sockconn"}: {"dmesg", "journalctl", "stats", "tcpdump"},
		{"nfs", "latency"}:  {"dmesg", "journalctl", "syslogs", "trace-cmd"},
		{"nfs", "sockconn"}: {"dmesg"},
		{"nfs", "error"}:    {"dmesg", "journalctl", "syslogs", "trace-cmd"},
	}
	if len(o.Actions) != len(want) {
		t.Fatalf("actions %v", o.Actions)
	}
	for k, v := range want {
		if !slices.Equal(o.Actions[k], v) {
			t.Errorf("%v: %v, want %v", k, o.Actions[k], v)
		}
	}
	wantCaps := []capture.Spec{
		{Protocol: "smb", Tool: "tcpdump", Args: []string{"-s", "65536", "-B", "10240", "-C", "2", "-W", "100"}},
		{Protocol: "nfs", Tool: "trace-cmd", Args: []string{"-e", "nfs", "-e", "nfs4", "-e", "sunrpc", "-b", "1024"}},
	}
	if len(o.Captures) != 2 {
		t.Fatalf("captures %+v", o.Captures)
	}
	for i, w := range wantCaps {
		g := o.Captures[i]
		if g.Protocol != w.Protocol || g.Tool != w.Tool || !slices.Equal(g.Args, w.Args) {
			t.Errorf("capture %d: %+v, want %+v", i, g, w)
		}
	}
	o.OutputDir = t.TempDir()
	if _, err := New(o); err != nil {
		t.Fatalf("the AODv2 file's options are refused: %v", err)
	}
}
