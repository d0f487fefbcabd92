package upload

import (
	"context"
	"errors"
	"log/slog"

	"github.com/linuxdiag/aod/internal/config"
)

// FromConfig maps the configuration's upload: section to Options with its
// destinations. It reads the secrets and resolves the credential chains but makes
// no request. Upload off gives ok false.
func FromConfig(ctx context.Context, c *config.Config, log *slog.Logger) (o Options, ok bool, err error) {
	u := c.Upload
	if !u.Enabled {
		return Options{}, false, nil
	}
	o = Options{OutputDir: c.OutputDir, Prefix: u.Prefix, Concurrency: u.Concurrency, BytesPerSecond: u.BandwidthBytes,
		Timeout: u.Timeout, MinBackoff: u.MinBackoff, MaxBackoff: u.MaxBackoff, MaxAttempts: u.MaxAttempts,
		BreakerCooldown: u.BreakerCooldown, ScanInterval: u.ScanInterval, Logger: log}
	o.Destinations, err = Destinations(ctx, u)
	return o, true, err
}

// Destinations builds the destinations of an upload: section.
func Destinations(ctx context.Context, u config.Upload) ([]Destination, error) {
	var ds []Destination
	var errs []error
	if a := u.Azure; a != nil {
		d, err := NewAzure(AzureConfig{AccountURL: a.AccountURL, Container: a.Container, Auth: a.Auth, ClientID: a.ClientID,
			Secret: Secret{File: a.SecretFile, Env: a.SecretEnv}})
		errs = append(errs, err)
		if err == nil {
			ds = append(ds, d)
		}
	}
	if s := u.S3; s != nil {
		d, err := NewS3(ctx, S3Config{Bucket: s.Bucket, Region: s.Region, Endpoint: s.Endpoint, PathStyle: s.PathStyle, Profile: s.Profile})
		errs = append(errs, err)
		if err == nil {
			ds = append(ds, d)
		}
	}
	return ds, errors.Join(errs...)
}
