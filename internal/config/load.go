package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/linuxdiag/aod/internal/archive"
	"github.com/linuxdiag/aod/internal/podattr"
)

// Top-level keys: AODv2's 2026 form, its 2025 form, and aod's own sections.
var (
	topKeys = []string{
		"watch_interval_sec", "aod_output_dir", "anomalies", "cleanup",
		"watcher", "guardian", "audit",
		"telemetry", "detection", "collection", "bundle", "upload", "workloads",
	}
	cleanupKeys    = []string{"cleanup_interval_sec", "max_log_age_days", "max_total_log_size_mb", "aod_output_dir"}
	telemetryKeys  = []string{"otlp", "prometheus", "cardinality_limit"}
	otlpKeys       = []string{"endpoint", "protocol", "headers", "compression", "timeout_sec", "export_interval_sec", "tls"}
	tlsKeys        = []string{"insecure", "ca_file", "cert_file", "key_file", "server_name", "insecure_skip_verify"}
	prometheusKeys = []string{"listen"}
	detectionKeys  = []string{"cooldown_sec", "latency_ceiling_ms", "max_events", "io_filesystems"}
	collectionKeys = []string{"timeout_sec", "lookback_sec", "max_output_mb", "concurrency"}
	bundleKeys     = []string{"zstd_level", "min_free_mb", "shutdown_dump"}
	workloadsKeys  = []string{"cgroup_root", "pod_log_dir", "container_log_dir", "metric_attributes"}
	auditKeys      = []string{"enabled"}
)

// Ranges of the settings. Counts share the detector's bound on acceptable_count.
var (
	watchIntervalSpec = seconds.in(0.001, 86400, false).fromAODv2()
	countSpec         = numSpec{min: 1, max: 1 << 20, integer: true}
	thresholdSpec     = millis.in(0, 3_600_000, false).fromAODv2()
	cleanupEverySpec  = seconds.in(0.001, 86400, false).fromAODv2()
	maxAgeSpec        = days.in(0.001, 3650, false).fromAODv2()
	maxSizeSpec       = mebi.in(0.001, 1<<20, false).fromAODv2()
	exportTimeoutSpec = seconds.in(0.001, 600, false)
	exportEverySpec   = seconds.in(1, 86400, false)
	cooldownSpec      = seconds.in(0, 86400, false)
	ceilingSpec       = millis.in(0, 3_600_000, false)
	maxEventsSpec     = numSpec{min: 1, max: 65536, integer: true}
	actionTimeoutSpec = seconds.in(0.001, 3600, false)
	lookbackSpec      = seconds.in(1, 7*86400, false)
	maxOutputSpec     = mebi.in(0.001, 4096, false)
	concurrencySpec   = numSpec{min: 1, max: 64, integer: true}
	zstdLevelSpec     = numSpec{min: 1, max: 22, integer: true}
	minFreeSpec       = mebi.in(0, 1<<20, false)
	cardinalitySpec   = numSpec{min: 1, max: MaxCardinalityLimit, integer: true}
)

// Defaults returns the configuration of an empty file: no anomalies, and the
// defaults of every other setting.
func Defaults() *Config {
	return &Config{
		WatchInterval: 60 * time.Second,
		OutputDir:     "/var/log/aod",
		Cleanup: Cleanup{
			Interval:     300 * time.Second,
			MaxAge:       7 * 24 * time.Hour,
			MaxTotalSize: 1024 << 20,
		},
		Telemetry: Telemetry{
			OTLP: OTLP{
				Protocol:       "grpc",
				Compression:    "gzip",
				Timeout:        10 * time.Second,
				ExportInterval: 30 * time.Second,
			},
			Prometheus:       Prometheus{Listen: "127.0.0.1:9464"},
			CardinalityLimit: DefaultCardinalityLimit,
		},
		Detection: Detection{
			Cooldown:       300 * time.Second,
			LatencyCeiling: DefaultLatencyCeiling,
			MaxEvents:      DefaultMaxEvents,
			IOFileSystems:  slices.Clone(DefaultIOFileSystems),
		},
		Collection: Collection{
			Timeout:     30 * time.Second,
			Lookback:    300 * time.Second,
			MaxOutput:   64 << 20,
			Concurrency: 4,
		},
		Bundle:    Bundle{ZstdLevel: archive.DefaultLevel, MinFree: 256 << 20, ShutdownDump: true},
		Upload:    defaultUpload(),
		Workloads: Workloads{PodLogDir: podattr.DefaultPodLogDir, ContainerLogDir: podattr.DefaultContainerLogDir},
	}
}

// DefaultCardinalityLimit is telemetry.cardinality_limit when the file gives none:
// the OpenTelemetry SDKs' default.
const DefaultCardinalityLimit = 2000

// MaxCardinalityLimit is the largest telemetry.cardinality_limit accepted.
const MaxCardinalityLimit = 1 << 20

// DefaultLatencyCeiling is detection.latency_ceiling_ms when the file gives none:
// AODv2's hard-coded limit, any single request this slow fires.
const DefaultLatencyCeiling = time.Second

// DefaultMaxEvents is detection.max_events when the file gives none: the triggering
// events kept with one anomaly.
const DefaultMaxEvents = 128

// DefaultLatencyThreshold is default_threshold_ms when a latency anomaly gives none
// (AODv2's): the latency that makes a request slow unless configured.
const DefaultLatencyThreshold = 10 * time.Millisecond

// Load reads and validates the configuration file at path. Warnings (such as the one
// for AODv2's 2025 form) come back even when the file is valid; err is an *Error
// listing every problem when it is not.
func Load(path string) (*Config, []Issue, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return Parse(path, data)
}

// ReadFile reads a configuration file the way Load does, for Migrate: only a
// regular file of at most MaxFileBytes. The error is an *Error.
func ReadFile(path string) ([]byte, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, &Error{Issues: []Issue{{File: path, Message: err.Error()}}}
	}
	return data, nil
}

// MaxFileBytes bounds what Load reads: AODv2's files and aod's are a few kilobytes,
// and a larger one is a mistake (a log, /dev/zero) that must not exhaust memory.
const MaxFileBytes = 1 << 20

// readFile reads a configuration file, refusing anything but a regular file (a named
// pipe would block the reader, a device never ends) and anything over MaxFileBytes.
func readFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file; allowed: a regular file of at most %d bytes", MaxFileBytes)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("larger than %d bytes; allowed: a regular file of at most %d bytes (a configuration is kilobytes)", MaxFileBytes, MaxFileBytes)
	}
	return data, nil
}

// Parse validates a configuration held in memory; name stands for the file in
// messages.
func Parse(name string, data []byte) (*Config, []Issue, error) {
	root, err := parseYAML(name, data)
	if err != nil {
		return nil, nil, err
	}
	d := &decoder{file: name}
	cfg := d.document(root)
	sortIssues(d.warns)
	warns := d.warns
	if n := len(warns) - MaxReported; n > 0 {
		warns = append(warns[:MaxReported:MaxReported], Issue{File: name, Message: fmt.Sprintf("and %d more warnings", n)})
	}
	if len(d.errs) > 0 {
		sortIssues(d.errs)
		e := &Error{Issues: d.errs}
		if n := len(e.Issues) - MaxReported; n > 0 {
			e.Issues, e.More = e.Issues[:MaxReported:MaxReported], n
		}
		return nil, warns, e
	}
	return cfg, warns, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// parseYAML returns the root node of the single document in data, nil for an empty
// file.
func parseYAML(name string, data []byte) (root *yaml.Node, err error) {
	defer func() {
		// The parser is third-party code fed with user input: a panic in it must
		// become an error, not take the agent down.
		if r := recover(); r != nil {
			root, err = nil, &Error{Issues: []Issue{{File: name, Message: fmt.Sprintf("invalid YAML: the parser failed: %v", r)}}}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(name, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, &Error{Issues: []Issue{{File: name, Line: extra.Line, Column: extra.Column,
			Message: "a second YAML document (after ---): got more than one; allowed: a single document"}}}
	case !errors.Is(err, io.EOF):
		return nil, syntaxError(name, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	if err := checkSize(name, doc.Content[0]); err != nil {
		return nil, err
	}
	return doc.Content[0], nil
}

func syntaxError(name string, err error) error {
	is := Issue{File: name, Message: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		is.Line, _ = strconv.Atoi(m[1])
		is.Message = "invalid YAML: " + strings.TrimPrefix(err.Error(), m[0])
	}
	return &Error{Issues: []Issue{is}}
}

func (d *decoder) document(root *yaml.Node) *Config {
	cfg := Defaults()
	top := d.mapping(root, root, "", topKeys)
	setAODv2(d, top, "watch_interval_sec", watchIntervalSpec, watchIntervalLow, &cfg.WatchInterval)
	if f, ok := top.get("aod_output_dir"); ok {
		if dir, ok := d.absPath(f); ok {
			cfg.OutputDir = dir
		}
	}

	legacyAt := d.legacyKey(top)
	switch f, ok := top.get("anomalies"); {
	case ok && legacyAt.key != nil:
		d.errorf(legacyAt.key, legacyAt.path, "AODv2 2025 section next to the 2026 anomalies: (line %d): got both forms; allowed: one form: anomalies: (2026), or watcher:/guardian: (2025)", f.key.Line)
	case ok:
		cfg.Anomalies = d.anomalies(f)
	case legacyAt.key != nil:
		cfg.Anomalies = d.legacy(top, legacyAt)
	}
	if f, ok := top.get("audit"); ok {
		am := d.mapping(f.key, f.val, f.path, auditKeys)
		if g, ok := am.get("enabled"); ok {
			d.boolean(g)
		}
		if legacyAt.key == nil {
			d.warnf(f.key, f.path, "ignored: aod records every action of a bundle in its manifest.json; remove audit:")
		}
	}

	if f, ok := top.get("cleanup"); ok {
		m := d.mapping(f.key, f.val, f.path, cleanupKeys)
		setAODv2(d, m, "cleanup_interval_sec", cleanupEverySpec, cleanupEveryLow, &cfg.Cleanup.Interval)
		setAODv2(d, m, "max_log_age_days", maxAgeSpec, maxAgeLow, &cfg.Cleanup.MaxAge)
		setAODv2(d, m, "max_total_log_size_mb", maxSizeSpec, maxSizeLow, &cfg.Cleanup.MaxTotalSize)
		d.cleanupOutputDir(m, cfg.OutputDir)
	}
	if f, ok := top.get("telemetry"); ok {
		d.telemetry(f, &cfg.Telemetry)
	}
	if f, ok := top.get("detection"); ok {
		m := d.mapping(f.key, f.val, f.path, detectionKeys)
		d.setDuration(m, "cooldown_sec", cooldownSpec, &cfg.Detection.Cooldown)
		d.setDuration(m, "latency_ceiling_ms", ceilingSpec, &cfg.Detection.LatencyCeiling)
		d.setInt(m, "max_events", maxEventsSpec, &cfg.Detection.MaxEvents)
		if g, ok := m.get("io_filesystems"); ok {
			cfg.Detection.IOFileSystems = d.ioFileSystems(g)
		}
	}
	if f, ok := top.get("collection"); ok {
		m := d.mapping(f.key, f.val, f.path, collectionKeys)
		d.setDuration(m, "timeout_sec", actionTimeoutSpec, &cfg.Collection.Timeout)
		d.setDuration(m, "lookback_sec", lookbackSpec, &cfg.Collection.Lookback)
		d.setBytes(m, "max_output_mb", maxOutputSpec, &cfg.Collection.MaxOutput)
		d.setInt(m, "concurrency", concurrencySpec, &cfg.Collection.Concurrency)
	}
	if f, ok := top.get("bundle"); ok {
		m := d.mapping(f.key, f.val, f.path, bundleKeys)
		d.setInt(m, "zstd_level", zstdLevelSpec, &cfg.Bundle.ZstdLevel)
		d.setBytes(m, "min_free_mb", minFreeSpec, &cfg.Bundle.MinFree)
		d.setBool(m, "shutdown_dump", &cfg.Bundle.ShutdownDump)
	}
	if f, ok := top.get("upload"); ok {
		d.upload(f, &cfg.Upload)
	}
	if f, ok := top.get("workloads"); ok {
		m := d.mapping(f.key, f.val, f.path, workloadsKeys)
		d.setPath(m, "cgroup_root", &cfg.Workloads.CgroupRoot)
		d.setPath(m, "pod_log_dir", &cfg.Workloads.PodLogDir)
		d.setPath(m, "container_log_dir", &cfg.Workloads.ContainerLogDir)
		d.setBool(m, "metric_attributes", &cfg.Workloads.MetricAttributes)
	}
	d.checkCaptures()
	return cfg
}

func (d *decoder) setDuration(m *fields, key string, q quantity, dst *time.Duration) {
	if f, ok := m.get(key); ok {
		if v, ok := d.duration(f, q); ok {
			*dst = v
		}
	}
}

func (d *decoder) setBytes(m *fields, key string, q quantity, dst *int64) {
	if f, ok := m.get(key); ok {
		if v, ok := d.quantity(f, q); ok {
			*dst = v
		}
	}
}

func (d *decoder) setInt(m *fields, key string, spec numSpec, dst *int) {
	if f, ok := m.get(key); ok {
		if v, ok := d.integer(f, spec); ok {
			*dst = v
		}
	}
}

func (d *decoder) setString(m *fields, key, allowed string, dst *string) {
	if f, ok := m.get(key); ok {
		if v, ok := d.str(f, allowed); ok {
			*dst = v
		}
	}
}

func (d *decoder) setEnum(m *fields, key string, dst *string, options ...string) {
	if f, ok := m.get(key); ok {
		if v, ok := d.enum(f, options...); ok {
			*dst = v
		}
	}
}

func (d *decoder) setBool(m *fields, key string, dst *bool) {
	if f, ok := m.get(key); ok {
		if v, ok := d.boolean(f); ok {
			*dst = v
		}
	}
}

// required returns key of m, reporting it missing at the section's key.
func (d *decoder) required(m *fields, key, allowed string) (field, bool) {
	f, ok := m.get(key)
	if !ok && !m.invalid {
		d.errorf(m.at, join(m.path, key), "missing required key; allowed: %s", allowed)
	}
	return f, ok
}

// absPath decodes a directory path. A relative one is read against the working
// directory, as AODv2 read it (as a service, from /), with a warning: the agent runs
// as a service, and where it starts should not decide where bundles go.
func (d *decoder) absPath(f field) (string, bool) {
	const allowed = "an absolute path, such as /var/log/aod"
	s, ok := d.path(f, allowed, outputDirMax)
	if !ok {
		return "", false
	}
	if filepath.IsAbs(s) {
		return filepath.Clean(s), true
	}
	abs, err := filepath.Abs(s)
	if err != nil || len(abs) > outputDirMax {
		d.bad(f.val, f.path, "a relative path that cannot be made absolute here", pathAllowed(allowed, outputDirMax))
		return "", false
	}
	d.warnf(f.val, f.path, "a relative path: got %s, read against the working directory as AODv2 did: %s (%s under systemd); write it absolute", describe(f.val), abs, filepath.Join("/", s))
	return abs, true
}

var headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

func (d *decoder) telemetry(f field, t *Telemetry) {
	m := d.mapping(f.key, f.val, f.path, telemetryKeys)
	if f, ok := m.get("otlp"); ok {
		d.otlp(f, &t.OTLP)
	}
	d.setInt(m, "cardinality_limit", cardinalitySpec, &t.CardinalityLimit)
	if f, ok := m.get("prometheus"); ok {
		pm := d.mapping(f.key, f.val, f.path, prometheusKeys)
		if g, ok := pm.get("listen"); ok {
			const allowed = `host:port with a port from 1 to 65535, such as 127.0.0.1:9464, or "" to turn the endpoint off`
			if s, ok := d.str(g, allowed); ok {
				if s != "" && !validHostPort(s) {
					d.bad(g.val, g.path, "not a listen address", allowed)
				} else {
					t.Prometheus.Listen = s
				}
			}
		}
	}
}

func (d *decoder) otlp(f field, o *OTLP) {
	m := d.mapping(f.key, f.val, f.path, otlpKeys)
	endpoint, _ := m.get("endpoint")
	if endpoint.key != nil {
		const allowed = `host:port (such as localhost:4317), an http:// or https:// URL, or "" to turn OTLP off`
		if s, ok := d.str(endpoint, allowed); ok {
			if s != "" && !validEndpoint(s) {
				d.bad(endpoint.val, endpoint.path, "not an OTLP endpoint", allowed)
			} else {
				o.Endpoint = s
			}
		}
	}
	d.setEnum(m, "protocol", &o.Protocol, "grpc", "http")
	d.setEnum(m, "compression", &o.Compression, "gzip", "none")
	d.setDuration(m, "timeout_sec", exportTimeoutSpec, &o.Timeout)
	d.setDuration(m, "export_interval_sec", exportEverySpec, &o.ExportInterval)
	if f, ok := m.get("headers"); ok {
		hm := d.mapping(f.key, f.val, f.path, nil)
		for _, name := range hm.order {
			h := hm.byName[name]
			if !headerNameRE.MatchString(name) {
				d.bad(h.key, h.path, "not a header name", "letters, digits and !#$%&'*+-.^_`|~")
				continue
			}
			if v, ok := d.str(h, "a string (quote numbers)"); ok {
				if o.Headers == nil {
					o.Headers = map[string]string{}
				}
				o.Headers[name] = v
			}
		}
	}
	if f, ok := m.get("tls"); ok {
		tm := d.mapping(f.key, f.val, f.path, tlsKeys)
		errs := len(d.errs)
		t := &o.TLS
		d.setBool(tm, "insecure", &t.Insecure)
		d.setPath(tm, "ca_file", &t.CAFile)
		d.setPath(tm, "cert_file", &t.CertFile)
		d.setPath(tm, "key_file", &t.KeyFile)
		d.setString(tm, "server_name", "a host name", &t.ServerName)
		d.setBool(tm, "insecure_skip_verify", &t.InsecureSkipVerify)
		// A file refused above is not missing: its own problem says it all.
		if (t.CertFile == "") != (t.KeyFile == "") && len(d.errs) == errs {
			d.errorf(tm.at, join(tm.path, "cert_file"), "a client certificate needs both files: got cert_file %q and key_file %q; allowed: both set, or neither", t.CertFile, t.KeyFile)
		}
		if ins, ok := tm.get("insecure"); ok && t.Insecure {
			if t.CAFile != "" || t.CertFile != "" || t.ServerName != "" || t.InsecureSkipVerify {
				d.errorf(ins.val, ins.path, "insecure: true turns TLS off, so the other tls settings would be ignored: got insecure: true; allowed: insecure: false, or no other tls setting")
			}
			if strings.HasPrefix(o.Endpoint, "https://") {
				d.errorf(ins.val, ins.path, "insecure: true contradicts the https:// endpoint %q: got insecure: true; allowed: an http:// endpoint, or insecure: false", o.Endpoint)
			}
		}
	}
}

func validHostPort(s string) bool {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	p, err := strconv.Atoi(port)
	return err == nil && p >= 1 && p <= 65535
}

func validEndpoint(s string) bool {
	if !strings.Contains(s, "://") {
		return validHostPort(s)
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		(u.Port() == "" || validHostPort(u.Host))
}

var fsTypeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

const ioFileSystemsAllowed = `a list of file system types as /proc/self/mountinfo names them (such as cifs, nfs4, ext4), or [all]`

// ioFileSystems decodes detection.io_filesystems.
func (d *decoder) ioFileSystems(f field) []string {
	names := d.names(f, "file system type", func(item field) (string, bool) {
		s, ok := d.str(item, ioFileSystemsAllowed)
		if ok && !fsTypeRE.MatchString(s) {
			d.bad(item.val, item.path, "not a file system type name", ioFileSystemsAllowed)
			return "", false
		}
		return s, ok
	})
	if isEmptyList(f.val) {
		d.errorf(f.key, f.path, "no file system: got an empty list; allowed: %s", ioFileSystemsAllowed)
	}
	if len(names) > 1 && slices.Contains(names, IOFileSystemsAll) {
		d.errorf(f.key, f.path, "%s with other types: got %s; allowed: %s", IOFileSystemsAll, strings.Join(names, ", "), ioFileSystemsAllowed)
	}
	return names
}
