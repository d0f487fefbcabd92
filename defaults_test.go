package aod_test

import (
	"slices"
	"testing"
	"time"

	"github.com/linuxdiag/aod/configs"
	"github.com/linuxdiag/aod/exporter/aodbundleconnector"
	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/receiver/aodreceiver"
)

const mib = 1 << 20

// TestComponentDefaultsAgreeWithTheAgent checks the collector components' defaults
// against the standalone agent's (the embedded configs/aod.yaml over config.Defaults)
// wherever both describe the same setting, so that the two hosts behave alike out of
// the box: same bundles, kept as long, in as much space.
func TestComponentDefaultsAgreeWithTheAgent(t *testing.T) {
	agent, _, err := config.Parse(configs.DefaultName, configs.Default)
	if err != nil {
		t.Fatal(err)
	}

	exp := aodbundleconnector.NewFactory().CreateDefaultConfig().(*aodbundleconnector.Config)
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"output_dir / aod_output_dir", exp.OutputDir, agent.OutputDir},
		{"cleanup.interval / cleanup_interval_sec", exp.Cleanup.Interval, agent.Cleanup.Interval},
		{"cleanup.max_age_days / max_log_age_days", time.Duration(exp.Cleanup.MaxAgeDays * float64(24*time.Hour)), agent.Cleanup.MaxAge},
		{"cleanup.max_total_size_mb / max_total_log_size_mb", int64(exp.Cleanup.MaxTotalSizeMB * mib), agent.Cleanup.MaxTotalSize},
		{"zstd_level / bundle.zstd_level", exp.ZstdLevel, agent.Bundle.ZstdLevel},
		{"min_free_mb / bundle.min_free_mb", int64(exp.MinFreeMB * mib), agent.Bundle.MinFree},
		{"action_timeout / collection.timeout_sec", exp.ActionTimeout, agent.Collection.Timeout},
		{"lookback / collection.lookback_sec", exp.Lookback, agent.Collection.Lookback},
		{"max_action_mb / collection.max_output_mb", int64(exp.MaxActionMB * mib), agent.Collection.MaxOutput},
		{"concurrency / collection.concurrency", exp.Concurrency, agent.Collection.Concurrency},
	} {
		if c.got != c.want {
			t.Errorf("aodbundle %s: %v, the agent's %v", c.name, c.got, c.want)
		}
	}
	for _, p := range []struct {
		name string
		cfg  *config.Protocol
	}{{config.ProtocolSMB, &agent.Anomalies.SMB}, {config.ProtocolNFS, &agent.Anomalies.NFS}} {
		for typ, list := range map[string][]config.Action{
			anomaly.TypeLatency:  p.cfg.Latency.Actions,
			anomaly.TypeError:    p.cfg.Error.Actions,
			anomaly.TypeSockconn: p.cfg.Sockconn.Actions,
		} {
			var want []string
			for _, a := range list {
				want = append(want, a.Name)
			}
			if got := exp.Actions[p.name][typ]; !slices.Equal(got, want) {
				t.Errorf("aodbundle actions %s %s: %v, the agent's %v", p.name, typ, got, want)
			}
		}
	}
	var ioActions []string
	for _, a := range agent.Anomalies.IO.Error.Actions {
		ioActions = append(ioActions, a.Name)
	}
	if got := exp.Actions[config.ProtocolIO][anomaly.TypeError]; !slices.Equal(got, ioActions) {
		t.Errorf("aodbundle actions io error: %v, the agent's %v", got, ioActions)
	}
	if len(exp.Actions) != 3 || len(exp.Actions[config.ProtocolIO]) != 1 || len(exp.Captures) != 0 {
		t.Errorf("aodbundle actions %v, captures %v: the agent's file has smb and nfs actions, io error actions and no captures", exp.Actions, exp.Captures)
	}

	// A latency anomaly that names no threshold takes AODv2's default: the same
	// default makes a request slow in the receiver.
	bare, _, err := config.Parse("bare.yaml", []byte("anomalies:\n  smb:\n    latency:\n      acceptable_count: 1\n  nfs:\n    latency:\n      acceptable_count: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	rcv := aodreceiver.NewFactory().CreateDefaultConfig().(*aodreceiver.Config)
	if got, want := rcv.SMB.LatencyThreshold, bare.Anomalies.SMB.Latency.DefaultThreshold; got != want {
		t.Errorf("aod receiver smb.latency_threshold %v, the agent's default_threshold_ms %v", got, want)
	}
	if got, want := rcv.NFS.LatencyThreshold, bare.Anomalies.NFS.Latency.DefaultThreshold; got != want {
		t.Errorf("aod receiver nfs.latency_threshold %v, the agent's default_threshold_ms %v", got, want)
	}
}
