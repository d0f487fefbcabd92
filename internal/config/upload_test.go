package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestUploadSection(t *testing.T) {
	src := `upload:
  enabled: true
  prefix: fleet/aod
  concurrency: 3
  bandwidth_mb_per_sec: 2.5
  timeout_sec: 120
  min_backoff_sec: 1
  max_backoff_sec: 60
  max_attempts: 20
  breaker_cooldown_sec: 30
  scan_interval_sec: 10
  azure:
    auth: sas
    secret_file: /etc/aod/sas-url
  s3:
    bucket: diag
    region: eu-west-1
    endpoint: https://objects.example.net:9000
    path_style: true
`
	cfg, warns, err := Parse("up.yaml", []byte(src))
	if err != nil || len(warns) != 0 {
		t.Fatalf("%v %v", err, warns)
	}
	want := Upload{Enabled: true, Prefix: "fleet/aod", Concurrency: 3, BandwidthBytes: 5 << 19, Timeout: 2 * time.Minute,
		MinBackoff: time.Second, MaxBackoff: time.Minute, MaxAttempts: 20, BreakerCooldown: 30 * time.Second,
		ScanInterval: 10 * time.Second, Azure: &UploadAzure{Auth: "sas", SecretFile: "/etc/aod/sas-url"},
		S3: &UploadS3{Bucket: "diag", Region: "eu-west-1", Endpoint: "https://objects.example.net:9000", PathStyle: true}}
	if !reflect.DeepEqual(cfg.Upload, want) {
		t.Errorf("got %+v\nwant %+v", cfg.Upload, want)
	}
	shown, err := cfg.YAML()
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := Parse("shown.yaml", shown)
	if err != nil || !reflect.DeepEqual(again.Upload, cfg.Upload) {
		t.Errorf("show -> load: %v\n%s", err, shown)
	}
	if d := Defaults(); d.Upload.Enabled || d.Upload.Azure != nil || d.Upload.S3 != nil {
		t.Errorf("upload is on by default: %+v", d.Upload)
	}
}

var uploadBadCases = []badCase{
	{"enabled without destination", "upload:\n  enabled: true # <-\n", "upload.enabled", "an azure: or s3: section", ""},
	{"azure auth unknown", "upload:\n  azure:\n    auth: managed # <-\n", "upload.azure.auth",
		"managed_identity, workload_identity, sas, connection_string", `got "managed"`},
	{"azure secret in clear", "upload:\n  azure:\n    auth: sas\n    secret_env: X\n    sas_url: https://a/b?sig=s # <-\n",
		"upload.azure.sas_url", "none here", "a credential in the configuration"},
	{"azure sas without secret", "upload:\n  azure:\n    auth: sas # <-\n", "upload.azure.auth", "exactly one of secret_file", "got neither"},
	{"azure identity without account", "upload:\n  azure:\n    container: c\n    auth: managed_identity # <-\n", "upload.azure.auth",
		"both set", `account_url ""`},
	{"azure account url with SAS", "upload:\n  azure:\n    auth: managed_identity\n    container: c\n    account_url: https://a.blob.core.windows.net/?sig=x # <-\n",
		"upload.azure.account_url", "https://<account>.blob.core.windows.net", "no SAS query"},
	{"s3 without bucket", "upload:\n  s3: # <-\n    region: us-east-1\n", "upload.s3.bucket", "a bucket name", "missing key"},
	{"s3 key in config", "upload:\n  s3:\n    bucket: b\n    secret_access_key: x # <-\n", "upload.s3.secret_access_key", "none here", ""},
	{"s3 endpoint with user", "upload:\n  s3:\n    bucket: b\n    endpoint: https://k:s@h # <-\n", "upload.s3.endpoint", "an http:// or https:// URL", "credentials never go in it"},
	{"concurrency zero", "upload:\n  concurrency: 0 # <-\n", "upload.concurrency", "an integer >= 1 and <= 64", "got 0"},
	{"backoff order", "upload:\n  min_backoff_sec: 10\n  max_backoff_sec: 5 # <-\n", "upload.max_backoff_sec", "at least min_backoff_sec", ""},
	{"prefix", "upload:\n  prefix: \"a b\" # <-\n", "upload.prefix", "letters, digits", ""},
}

func TestUploadBad(t *testing.T) {
	for _, c := range uploadBadCases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Parse("bad.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			line := markedLine(t, c.yaml)
			var hit bool
			for _, is := range err.(*Error).Issues {
				msg := is.String()
				if is.Line == line && is.Path == c.path && strings.Contains(msg, "allowed: ") &&
					strings.Contains(msg[strings.Index(msg, "allowed: "):], c.allowed) && strings.Contains(msg, c.want) &&
					strings.HasPrefix(msg, "bad.yaml:") {
					hit = true
				}
			}
			if !hit {
				t.Errorf("want line %d, path %s, allowed %q, %q; got\n%v", line, c.path, c.allowed, c.want, err)
			}
		})
	}
}
