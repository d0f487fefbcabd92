package aodbundleconnector

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/linuxdiag/aod/configs"
	"github.com/linuxdiag/aod/internal/bundler"
	"github.com/linuxdiag/aod/internal/capture"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/upload"
)

// Config is the aodbundle connector's configuration: the same knobs as the agent's
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
	// Upload sends every bundle to object storage, as the agent's upload: section
	// does (off by default, the same defaults).
	Upload UploadConfig `mapstructure:"upload"`
}

// UploadConfig is the agent's upload: section in the collector's spelling.
// Credentials never stand in it: see AzureUploadConfig and S3UploadConfig.
type UploadConfig struct {
	Enabled           bool          `mapstructure:"enabled"`
	Prefix            string        `mapstructure:"prefix"`
	Concurrency       int           `mapstructure:"concurrency"`
	BandwidthMBPerSec float64       `mapstructure:"bandwidth_mb_per_sec"` // 0: unbounded
	Timeout           time.Duration `mapstructure:"timeout"`
	MinBackoff        time.Duration `mapstructure:"min_backoff"`
	MaxBackoff        time.Duration `mapstructure:"max_backoff"`
	MaxAttempts       int           `mapstructure:"max_attempts"` // 0: retry while the bundle is on disk
	BreakerCooldown   time.Duration `mapstructure:"breaker_cooldown"`
	ScanInterval      time.Duration `mapstructure:"scan_interval"`
	// Azure and S3 are the destinations; nil: not used.
	Azure *AzureUploadConfig `mapstructure:"azure"`
	S3    *S3UploadConfig    `mapstructure:"s3"`
}

// AzureUploadConfig is an Azure Blob Storage destination: a managed or workload
// identity, or a SAS URL or connection string read from SecretFile or SecretEnv.
type AzureUploadConfig struct {
	Auth       string `mapstructure:"auth"` // managed_identity, workload_identity, sas, connection_string
	AccountURL string `mapstructure:"account_url"`
	Container  string `mapstructure:"container"`
	ClientID   string `mapstructure:"client_id"`
	SecretFile string `mapstructure:"secret_file"`
	SecretEnv  string `mapstructure:"secret_env"`
}

// S3UploadConfig is an S3 or S3-compatible destination; credentials come from the
// AWS SDK's standard chain.
type S3UploadConfig struct {
	Bucket    string `mapstructure:"bucket"`
	Region    string `mapstructure:"region"`
	Endpoint  string `mapstructure:"endpoint"`
	PathStyle bool   `mapstructure:"path_style"`
	Profile   string `mapstructure:"profile"`
}

// agentUpload maps c to the agent's configuration type, which builds the
// destinations the same way in both hosts.
func (c *UploadConfig) agentUpload() config.Upload {
	u := config.Upload{Enabled: c.Enabled, Prefix: c.Prefix, Concurrency: c.Concurrency,
		BandwidthBytes: int64(c.BandwidthMBPerSec * mib), Timeout: c.Timeout, MinBackoff: c.MinBackoff,
		MaxBackoff: c.MaxBackoff, MaxAttempts: c.MaxAttempts, BreakerCooldown: c.BreakerCooldown, ScanInterval: c.ScanInterval}
	if a := c.Azure; a != nil {
		u.Azure = &config.UploadAzure{Auth: a.Auth, AccountURL: a.AccountURL, Container: a.Container, ClientID: a.ClientID,
			SecretFile: a.SecretFile, SecretEnv: a.SecretEnv}
	}
	if s := c.S3; s != nil {
		u.S3 = &config.UploadS3{Bucket: s.Bucket, Region: s.Region, Endpoint: s.Endpoint, PathStyle: s.PathStyle, Profile: s.Profile}
	}
	return u
}

func (c *UploadConfig) validate() error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	if c.Azure == nil && c.S3 == nil {
		errs = append(errs, errors.New("upload: enabled without a destination (azure or s3)"))
	}
	if c.Azure != nil && !slices.Contains(upload.AzureAuths, c.Azure.Auth) {
		errs = append(errs, fmt.Errorf("upload: azure: auth %q; allowed: %v", c.Azure.Auth, upload.AzureAuths))
	}
	if c.S3 != nil && c.S3.Bucket == "" {
		errs = append(errs, errors.New("upload: s3: bucket is not set"))
	}
	if c.Concurrency < 0 || c.BandwidthMBPerSec < 0 || c.Timeout < 0 || c.MinBackoff < 0 || c.MaxBackoff < 0 ||
		c.MaxAttempts < 0 || c.BreakerCooldown < 0 || c.ScanInterval < 0 {
		errs = append(errs, errors.New("upload: settings must not be negative"))
	}
	return errors.Join(errs...)
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

// agentDefaults are the bundle settings of the standalone agent started without
// --config: the embedded configs/aod.yaml over config.Defaults. The connector's
// defaults are these, so that both hosts collect the same actions into bundles kept
// as long and as large.
var agentDefaults = sync.OnceValue(func() bundler.Options {
	return bundler.FromConfig(agentConfig())
})

var agentConfig = sync.OnceValue(func() *config.Config {
	cfg, _, err := config.Parse(configs.DefaultName, configs.Default)
	if err != nil {
		// The embedded file is compiled in and loaded by internal/config's tests.
		panic(fmt.Sprintf("aodbundle: the embedded default configuration does not load: %v", err))
	}
	return cfg
})

func createDefaultConfig() *Config {
	d := agentDefaults()
	c := &Config{
		OutputDir:     d.OutputDir,
		Actions:       map[string]map[string][]string{},
		ActionTimeout: d.ActionTimeout,
		Lookback:      d.Lookback,
		MaxActionMB:   float64(d.MaxActionBytes) / mib,
		Concurrency:   d.Concurrency,
		MaxPending:    bundler.DefaultMaxPending,
		ZstdLevel:     d.ZstdLevel,
		Cleanup: CleanupConfig{
			Interval:       d.CleanupInterval,
			MaxAgeDays:     d.MaxAge.Hours() / 24,
			MaxTotalSizeMB: float64(d.MaxTotalBytes) / mib,
		},
		MinFreeMB: float64(d.MinFreeBytes) / mib,
	}
	u := agentConfig().Upload
	c.Upload = UploadConfig{Enabled: u.Enabled, Prefix: u.Prefix, Concurrency: u.Concurrency,
		BandwidthMBPerSec: float64(u.BandwidthBytes) / mib, Timeout: u.Timeout, MinBackoff: u.MinBackoff,
		MaxBackoff: u.MaxBackoff, MaxAttempts: u.MaxAttempts, BreakerCooldown: u.BreakerCooldown, ScanInterval: u.ScanInterval}
	// Copies: a caller may change its configuration without touching the next one's.
	for k, names := range d.Actions {
		if c.Actions[k.Protocol] == nil {
			c.Actions[k.Protocol] = map[string][]string{}
		}
		c.Actions[k.Protocol][k.Type] = slices.Clone(names)
	}
	for _, cs := range d.Captures {
		c.Captures = append(c.Captures, CaptureConfig{Protocol: cs.Protocol, Tool: cs.Tool, Args: slices.Clone(cs.Args)})
	}
	return c
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
	errs = append(errs, c.Upload.validate())
	return errors.Join(errs...)
}
