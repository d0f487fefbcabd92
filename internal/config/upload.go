package config

import (
	"net/url"
	"strings"
	"time"
)

// Upload configures the upload of bundles to object storage (off by default).
// Credentials never stand in the file: Azure's come from the machine's identity
// or from a secret file or environment variable, S3's from the SDK's standard
// chain.
type Upload struct {
	Enabled         bool
	Prefix          string // object name prefix
	Concurrency     int    // uploads at once
	BandwidthBytes  int64  // bytes per second, all uploads together; 0: unbounded
	Timeout         time.Duration
	MinBackoff      time.Duration
	MaxBackoff      time.Duration
	MaxAttempts     int // 0: retry while the bundle is on disk
	BreakerCooldown time.Duration
	ScanInterval    time.Duration
	Azure           *UploadAzure // nil: no Azure destination
	S3              *UploadS3    // nil: no S3 destination
}

// UploadAzure is an Azure Blob Storage destination.
type UploadAzure struct {
	AccountURL string
	Container  string
	Auth       string // managed_identity, workload_identity, sas, connection_string
	ClientID   string
	SecretFile string // sas: the container SAS URL; connection_string: the string
	SecretEnv  string
}

// UploadS3 is an S3 or S3-compatible destination.
type UploadS3 struct {
	Bucket    string
	Region    string
	Endpoint  string
	PathStyle bool
	Profile   string
}

// Azure authentication methods (upload.azure.auth).
var azureAuths = []string{"managed_identity", "workload_identity", "sas", "connection_string"}

var (
	uploadKeys = []string{"enabled", "prefix", "concurrency", "bandwidth_mb_per_sec", "timeout_sec",
		"min_backoff_sec", "max_backoff_sec", "max_attempts", "breaker_cooldown_sec", "scan_interval_sec", "azure", "s3"}
	uploadAzureKeys = []string{"account_url", "container", "auth", "client_id", "secret_file", "secret_env"}
	uploadS3Keys    = []string{"bucket", "region", "endpoint", "path_style", "profile"}
	// secretKeys are keys someone may try to put a credential under.
	secretKeys = []string{"sas_url", "sas_token", "connection_string", "account_key", "access_key", "secret_key",
		"access_key_id", "secret_access_key", "password", "key"}

	uploadConcurrencySpec = numSpec{min: 1, max: 64, integer: true}
	bandwidthSpec         = mebi.in(0, 1<<20, false)
	uploadTimeoutSpec     = seconds.in(1, 86400, false)
	backoffSpec           = seconds.in(0.001, 86400, false)
	maxAttemptsSpec       = numSpec{min: 0, max: 1 << 20, integer: true}
	scanIntervalSpec      = seconds.in(1, 86400, false)
)

func defaultUpload() Upload {
	return Upload{Prefix: "aod/v1", Concurrency: 2, Timeout: 10 * time.Minute, MinBackoff: 5 * time.Second,
		MaxBackoff: 10 * time.Minute, BreakerCooldown: 5 * time.Minute, ScanInterval: 5 * time.Minute}
}

func (d *decoder) upload(f field, u *Upload) {
	m := d.keys(f.key, f.val, f.path, keySet{allowed: uploadKeys})
	d.setBool(m, "enabled", &u.Enabled)
	if g, ok := m.get("prefix"); ok {
		const allowed = "an object name prefix such as aod/v1: letters, digits, '-', '_', '.', '/'"
		if s, ok := d.str(g, allowed); ok {
			if !validPrefix(s) {
				d.bad(g.val, g.path, "not an object name prefix", allowed)
			} else {
				u.Prefix = s
			}
		}
	}
	d.setInt(m, "concurrency", uploadConcurrencySpec, &u.Concurrency)
	d.setBytes(m, "bandwidth_mb_per_sec", bandwidthSpec, &u.BandwidthBytes)
	d.setDuration(m, "timeout_sec", uploadTimeoutSpec, &u.Timeout)
	d.setDuration(m, "min_backoff_sec", backoffSpec, &u.MinBackoff)
	d.setDuration(m, "max_backoff_sec", backoffSpec, &u.MaxBackoff)
	d.setInt(m, "max_attempts", maxAttemptsSpec, &u.MaxAttempts)
	d.setDuration(m, "breaker_cooldown_sec", backoffSpec, &u.BreakerCooldown)
	d.setDuration(m, "scan_interval_sec", scanIntervalSpec, &u.ScanInterval)
	if g, ok := m.get("max_backoff_sec"); ok && u.MaxBackoff < u.MinBackoff {
		d.errorf(g.val, g.path, "smaller than min_backoff_sec: got %s; allowed: at least min_backoff_sec (%s s)",
			describe(g.val), seconds.format(int64(u.MinBackoff)))
	}
	if g, ok := m.get("azure"); ok {
		u.Azure = d.uploadAzure(g)
	}
	if g, ok := m.get("s3"); ok {
		u.S3 = d.uploadS3(g)
	}
	if g, ok := m.get("enabled"); ok && u.Enabled && u.Azure == nil && u.S3 == nil {
		d.errorf(g.val, g.path, "upload is enabled without a destination: got enabled: true; allowed: an azure: or s3: section (or both) beside it")
	}
}

func (d *decoder) uploadAzure(f field) *UploadAzure {
	a := &UploadAzure{}
	m := d.keys(f.key, f.val, f.path, keySet{allowed: uploadAzureKeys})
	d.refuseSecrets(f)
	if g, ok := m.get("account_url"); ok {
		const allowed = "the account's blob endpoint, https://<account>.blob.core.windows.net"
		if s, ok := d.str(g, allowed); ok {
			if u, err := url.Parse(s); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
				d.bad(g.val, g.path, "not a blob endpoint URL (and no SAS query: secrets go in secret_file or secret_env)", allowed)
			} else {
				a.AccountURL = s
			}
		}
	}
	d.setString(m, "container", "a container name", &a.Container)
	d.setEnum(m, "auth", &a.Auth, azureAuths...)
	d.setString(m, "client_id", "a managed identity's client ID", &a.ClientID)
	d.setPath(m, "secret_file", &a.SecretFile)
	d.setString(m, "secret_env", "an environment variable name", &a.SecretEnv)
	auth, authGiven := m.get("auth")
	switch {
	case !authGiven:
		d.errorf(f.key, join(f.path, "auth"), "missing key: got nothing; allowed: %s", strings.Join(azureAuths, ", "))
	case a.Auth == "sas" || a.Auth == "connection_string":
		if (a.SecretFile == "") == (a.SecretEnv == "") {
			d.errorf(auth.val, auth.path, "auth %s needs its secret: got %s; allowed: exactly one of secret_file (a file of mode 0600) or secret_env (a variable name)",
				a.Auth, secretGot(a))
		}
		if a.Auth == "connection_string" && a.Container == "" {
			d.errorf(auth.val, join(f.path, "container"), "missing key: got nothing; allowed: a container name")
		}
	case a.Auth == "managed_identity" || a.Auth == "workload_identity":
		if a.AccountURL == "" || a.Container == "" {
			d.errorf(auth.val, auth.path, "auth %s needs account_url and container: got account_url %q, container %q; allowed: both set", a.Auth, a.AccountURL, a.Container)
		}
	}
	return a
}

func secretGot(a *UploadAzure) string {
	switch {
	case a.SecretFile != "" && a.SecretEnv != "":
		return "both"
	case a.SecretFile == "" && a.SecretEnv == "":
		return "neither"
	}
	return "one"
}

func (d *decoder) uploadS3(f field) *UploadS3 {
	s := &UploadS3{}
	m := d.keys(f.key, f.val, f.path, keySet{allowed: uploadS3Keys})
	d.refuseSecrets(f)
	d.setString(m, "bucket", "a bucket name", &s.Bucket)
	d.setString(m, "region", "a region such as us-east-1", &s.Region)
	d.setString(m, "profile", "a profile of the shared AWS files", &s.Profile)
	d.setBool(m, "path_style", &s.PathStyle)
	if g, ok := m.get("endpoint"); ok {
		const allowed = `an http:// or https:// URL of an S3-compatible store, or "" for AWS`
		if v, ok := d.str(g, allowed); ok {
			if u, err := url.Parse(v); v != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil) {
				d.bad(g.val, g.path, "not an endpoint URL (credentials never go in it)", allowed)
			} else {
				s.Endpoint = v
			}
		}
	}
	if s.Bucket == "" {
		d.errorf(f.key, join(f.path, "bucket"), "missing key: got nothing; allowed: a bucket name")
	}
	return s
}

// refuseSecrets says where a credential written into the section must go instead.
// The unknown-key error is already reported; this one says why.
func (d *decoder) refuseSecrets(f field) {
	v := deref(f.val)
	if v == nil {
		return
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		for _, k := range secretKeys {
			if deref(v.Content[i]).Value == k {
				d.errorf(v.Content[i], join(f.path, k), "a credential in the configuration: got %s; allowed: none here (Azure: secret_file or secret_env; S3: the standard AWS environment variables, shared files or instance metadata)", k)
			}
		}
	}
}

func validPrefix(s string) bool {
	if len(s) > 256 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '/') {
			return false
		}
	}
	return true
}
