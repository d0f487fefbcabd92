package aodanomalyconnector

import (
	"errors"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/detector"
	"github.com/linuxdiag/aod/internal/proto"
)

// Config configures the connector. The detectors take the same configuration as the
// standalone agent (AODv2's schema plus aod's detection: section), either from a file
// or inline; only watch_interval_sec, anomalies: smb: and detection: matter here.
type Config struct {
	// ConfigFile is an aod configuration file, such as the agent's /etc/aod/aod.yaml.
	ConfigFile string `mapstructure:"config_file"`
	// AOD is the same configuration written inline in the collector's file.
	AOD map[string]any `mapstructure:"aod"`
	// ProcRoot is the directory holding net/tcp and net/tcp6 for the connection
	// detector: /proc, or e.g. /host/proc/1 for the host's network namespace from a
	// container.
	ProcRoot string `mapstructure:"proc_root"`
	// MetricsInterval is how often the anomaly counter is re-sent when nothing fires,
	// so that exporters which expire idle series (prometheus) keep it.
	MetricsInterval time.Duration `mapstructure:"metrics_interval"`
}

func createDefaultConfig() *Config {
	return &Config{ProcRoot: "/proc", MetricsInterval: time.Minute}
}

// Validate loads the aod configuration and checks that it configures detectors.
func (c *Config) Validate() error {
	_, err := c.aod()
	return err
}

// aod loads the aod configuration and checks that the detectors it configures build.
func (c *Config) aod() (*config.Config, error) {
	var errs []error
	if c.MetricsInterval <= 0 {
		errs = append(errs, fmt.Errorf("metrics_interval must be positive, got %v", c.MetricsInterval))
	}
	if c.ProcRoot == "" {
		errs = append(errs, errors.New("proc_root must not be empty"))
	}
	cfg, err := c.load()
	if err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	sets, err := detector.NewSets(cfg, func(proto.Protocol) detector.Env { return detector.Env{} })
	switch {
	case err != nil:
		errs = append(errs, err)
	case len(sets) == 0:
		errs = append(errs, errors.New("the aod configuration has no anomalies (anomalies: smb: latency/error/sockconn)"))
	}
	return cfg, errors.Join(errs...)
}

func (c *Config) load() (*config.Config, error) {
	var (
		cfg *config.Config
		err error
	)
	switch {
	case c.ConfigFile != "" && c.AOD != nil:
		return nil, errors.New("set either config_file or aod, not both")
	case c.ConfigFile != "":
		cfg, _, err = config.Load(c.ConfigFile)
	case c.AOD != nil:
		var data []byte
		if data, err = yaml.Marshal(c.AOD); err != nil {
			return nil, fmt.Errorf("aod: %w", err)
		}
		cfg, _, err = config.Parse("aod (inline)", data)
	default:
		return nil, errors.New("set config_file (an aod configuration file) or aod (the same configuration inline)")
	}
	if err != nil {
		return nil, fmt.Errorf("aod configuration: %w", err)
	}
	return cfg, nil
}
