package aodreceiver

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/nfs"
	"github.com/linuxdiag/aod/internal/smb"
	"github.com/linuxdiag/aod/receiver/aodreceiver/internal/metadata"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	if name == "" {
		sub, err = cm.Sub(metadata.Type.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	if err := sub.Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestDefaultConfig(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig()
	if err := componenttest.CheckConfigStruct(cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.(*Config).Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	if got := loadConfig(t, ""); got.Histogram != HistogramExponential || got.SMB.LatencyThreshold != 10*time.Millisecond {
		t.Fatalf("empty section: %+v", got)
	}
}

func TestConfigFromYAML(t *testing.T) {
	cfg := loadConfig(t, "custom")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.CollectionInterval != 30*time.Second || cfg.Histogram != HistogramExplicit || cfg.FlushInterval != 50*time.Millisecond || cfg.RingBufferBytes != 16<<20 || cfg.CardinalityLimit != 500 {
		t.Fatalf("%+v", cfg)
	}
	if want := (WorkloadsConfig{CgroupRoot: "/host/sys/fs/cgroup", PodLogDir: "/host/var/log/pods", MetricAttributes: true}); cfg.Workloads != want {
		t.Errorf("workloads %+v, want %+v", cfg.Workloads, want)
	}
	th := cfg.SMB.thresholds(smb.Table)
	for cmd, want := range map[uint16]bpf.Threshold{
		smb.Read:         {Tracked: true, Latency: 100 * time.Millisecond},
		smb.Write:        {Tracked: true, Latency: 200 * time.Millisecond},
		smb.Create:       {Tracked: true, Latency: 25 * time.Millisecond},
		smb.ChangeNotify: {Tracked: false, Latency: 25 * time.Millisecond},
		smb.OplockBreak:  {Tracked: false, Latency: 25 * time.Millisecond},
	} {
		if th[cmd] != want {
			t.Errorf("%s: %+v, want %+v", smb.Command(cmd), th[cmd], want)
		}
	}
	f := cfg.SMB.errorFilter(smb.Table)
	if f.All || len(f.Statuses) != 1 || f.Statuses[0] != 0xc0000022 || len(f.Errnos) != 1 || f.Errnos[0] != 5 {
		t.Errorf("error filter %+v", f)
	}
	if f := NewFactory().CreateDefaultConfig().(*Config).SMB.errorFilter(smb.Table); !f.All {
		t.Errorf("default error filter %+v, want all", f)
	}

	// The nfs section: NFSv4 and NFSv3 procedure names, NFS status and errno names.
	nth := cfg.NFS.thresholds(nfs.Table)
	for cmd, want := range map[uint16]bpf.Threshold{
		nfs.V4Read:   {Tracked: true, Latency: 300 * time.Millisecond},
		nfs.V3Read:   {Tracked: true, Latency: 400 * time.Millisecond},
		nfs.V4Lookup: {Tracked: true, Latency: 50 * time.Millisecond},
		nfs.V4Commit: {Tracked: false, Latency: 50 * time.Millisecond},
	} {
		if nth[cmd] != want {
			t.Errorf("%s: %+v, want %+v", nfs.Command(cmd), nth[cmd], want)
		}
	}
	nf := cfg.NFS.errorFilter(nfs.Table)
	stale, _ := nfs.LookupStatus("NFS4ERR_STALE")
	timedOut, _ := nfs.LookupStatus("ETIMEDOUT")
	if nf.All || !slices.Equal(nf.Statuses, []uint32{stale, timedOut}) || len(nf.Errnos) != 0 {
		t.Errorf("NFS error filter %+v, want statuses NFS4ERR_STALE (%d) and ETIMEDOUT (%d)", nf, stale, timedOut)
	}
}

func TestConfigValidateNamesEveryProblem(t *testing.T) {
	err := loadConfig(t, "bad").Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{
		"collection_interval must be positive",
		`histogram must be "exponential" or "explicit", not "native"`,
		`unknown SMB2 command "SMB2_FROB"`,
		`exclude_commands: unknown SMB2 command "SMB2_NOPE"`,
		`smb.track_errors: "STATUS_NOT_A_THING": not a smb status name`,
		`nfs.command_thresholds: unknown NFS procedure "NFSPROC4_CLNT_BOGUS"`,
		`nfs.track_errors: "STATUS_ACCESS_DENIED": not a nfs status name`,
		"flush_interval must be in (0, 200ms], not 1s",
		"ring_buffer_bytes must be a power of two, not 1000",
		"cardinality_limit must be in [1, 1048576], not 0",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\n does not say %q", err, want)
		}
	}
}
