package aodbundleexporter

import (
	"errors"
	"log/slog"
	"time"

	"github.com/linuxdiag/aod/internal/actions"
	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/bundler"
	"github.com/linuxdiag/aod/internal/capture"
)

// Config is the aodbundle exporter's configuration: the same knobs as the agent's
// file, in the collector's spelling.
type Config struct {
	// OutputDir is aod_output_dir; bundles go to its batches subdirectory.
	OutputDir string `mapstructure:"output_dir"`
	// Actions maps protocol -> anomaly type -> action names (quick actions and
	// capture tools). events, inflight, sockets and cifs_params are always added.
	Actions map[string]map[string][]string `mapstructure:"actions"`
	// Captures are long-running captures, at most one per tool.
	Captures []CaptureConfig `mapstructure:"captures"`

	ActionTimeout time.Duration `mapstructure:"action_timeout"`
	Lookback      time.Duration `mapstructure:"lookback"`
	MaxActionMB   float64       `mapstructure:"max_action_mb"`
	Concurrency   int           `mapstructure:"concurrency"`
	MaxPending    int           `mapstructure:"max_pending"`
	ZstdLevel     int           `mapstructure:"zstd_level"`
	Cleanup       CleanupConfig `mapstructure:"cleanup"`
	// MinFreeMB is the free-space floor of the output filesystem.
	MinFreeMB float64 `mapstructure:"min_free_mb"`
}

// CaptureConfig is one capture: tcpdump or trace-cmd for a protocol.
type CaptureConfig struct {
	Protocol string   `mapstructure:"protocol"`
	Tool     string   `mapstructure:"tool"`
	Args     []string `mapstructure:"args"`
}

// CleanupConfig is AODv2's cleanup section.
type CleanupConfig struct {
	Interval       time.Duration `mapstructure:"interval"`
	MaxAgeDays     float64       `mapstructure:"max_age_days"`
	MaxTotalSizeMB float64       `mapstructure:"max_total_size_mb"` // fractions allowed: 0.5 is 512 KiB
}

const mib = 1 << 20

// aodv2QuickActions are the actions AODv2 configurations list.
var aodv2QuickActions = []string{actions.NameDmesg, actions.NameJournalctl, actions.NameDebugData,
	actions.NameStats, actions.NameMounts, actions.NameSmbinfo, actions.NameSyslogs}

func createDefaultConfig() *Config {
	return &Config{
		OutputDir: "/var/log/aod",
		Actions: map[string]map[string][]string{"smb": {
			anomaly.TypeLatency:  aodv2QuickActions,
			anomaly.TypeError:    aodv2QuickActions,
			anomaly.TypeSockconn: aodv2QuickActions,
		}},
		ActionTimeout: bundler.DefaultActionTimeout,
		Lookback:      bundler.DefaultLookback,
		MaxActionMB:   bundler.DefaultMaxActionBytes / mib,
		Concurrency:   bundler.DefaultConcurrency,
		MaxPending:    bundler.DefaultMaxPending,
		ZstdLevel:     3,
		Cleanup:       CleanupConfig{Interval: bundler.DefaultCleanupInterval, MaxAgeDays: 2, MaxTotalSizeMB: 1024},
		MinFreeMB:     256,
	}
}

// options maps the configuration to the bundler's options.
func (c *Config) options(log *slog.Logger) bundler.Options {
	o := bundler.Options{
		OutputDir:       c.OutputDir,
		Actions:         map[bundler.Key][]string{},
		ActionTimeout:   c.ActionTimeout,
		Lookback:        c.Lookback,
		MaxActionBytes:  int64(c.MaxActionMB * mib),
		Concurrency:     c.Concurrency,
		MaxPending:      c.MaxPending,
		ZstdLevel:       c.ZstdLevel,
		CleanupInterval: c.Cleanup.Interval,
		MaxAge:          time.Duration(c.Cleanup.MaxAgeDays * float64(24*time.Hour)),
		MaxTotalBytes:   int64(c.Cleanup.MaxTotalSizeMB * mib),
		MinFreeBytes:    int64(c.MinFreeMB * mib),
		Logger:          log,
	}
	for proto, types := range c.Actions {
		for typ, names := range types {
			o.Actions[bundler.Key{Protocol: proto, Type: typ}] = names
		}
	}
	for _, cc := range c.Captures {
		o.Captures = append(o.Captures, capture.Spec{Protocol: cc.Protocol, Tool: cc.Tool, Args: cc.Args})
	}
	return o
}

// Validate checks the configuration the way the bundler will use it.
func (c *Config) Validate() error {
	var errs []error
	if c.ActionTimeout < 0 || c.Lookback < 0 || c.Cleanup.Interval < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if c.MaxActionMB < 0 || c.Cleanup.MaxAgeDays < 0 || c.Cleanup.MaxTotalSizeMB < 0 || c.MinFreeMB < 0 {
		errs = append(errs, errors.New("sizes and ages must not be negative"))
	}
	if c.Concurrency < 0 || c.MaxPending < 0 {
		errs = append(errs, errors.New("concurrency and max_pending must not be negative"))
	}
	if _, err := bundler.New(c.options(nil)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
