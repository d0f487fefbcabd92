package aodreceiver

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/errno"
	"github.com/linuxdiag/aod/internal/ingest"
	"github.com/linuxdiag/aod/internal/nfs"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/ringreader"
	"github.com/linuxdiag/aod/internal/smb"
)

// Histogram forms of the histogram config field.
const (
	HistogramExponential = "exponential"
	HistogramExplicit    = "explicit"
)

// TrackAllErrors in track_errors makes every failed request an event.
const TrackAllErrors = "all"

// maxFlushInterval is the most an event may wait in user space before it is handed on.
const maxFlushInterval = 200 * time.Millisecond

// Config is the receiver's configuration. The knobs shared by every protocol are at
// the top; each protocol's own are in its section (smb), so that a new protocol is a
// new section of this receiver, not a new receiver.
type Config struct {
	// CollectionInterval is how often metrics are collected.
	CollectionInterval time.Duration `mapstructure:"collection_interval"`
	// Histogram is the form of the operation duration histograms: "exponential" (the
	// kernel's buckets exactly) or "explicit" (classic buckets on kernel bucket edges,
	// for Prometheus exporters without native histograms).
	Histogram string `mapstructure:"histogram"`
	// StaleRequestAge is how long a request may stay unanswered before it is taken for
	// one that will never complete and counted as aged out.
	StaleRequestAge time.Duration `mapstructure:"stale_request_age"`
	// FlushInterval bounds how long an event waits in the receiver (at most 200ms).
	FlushInterval time.Duration `mapstructure:"flush_interval"`
	// RingBufferBytes sizes the kernel's event ring: a power of two, at least a page.
	RingBufferBytes uint32 `mapstructure:"ring_buffer_bytes"`
	// CardinalityLimit bounds the series of each request metric: past it, new series
	// fold into one carrying only otel.metric.overflow=true, as in aod's
	// telemetry.cardinality_limit.
	CardinalityLimit int `mapstructure:"cardinality_limit"`
	// SMB configures what the SMB client (cifs) probes report.
	SMB ProtocolConfig `mapstructure:"smb"`
	// NFS configures what the NFS client (sunrpc, nfs, nfsv4) probes report.
	NFS ProtocolConfig `mapstructure:"nfs"`
	// Workloads says where the node's cgroup tree and kubelet's log folders are, which
	// name the pod, container or systemd unit of each request's issuer, and whether the
	// SMB request metrics carry them (aod's workloads section).
	Workloads WorkloadsConfig `mapstructure:"workloads"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// WorkloadsConfig is aod's workloads section; empty paths take the host's places.
type WorkloadsConfig struct {
	CgroupRoot       string `mapstructure:"cgroup_root"`
	PodLogDir        string `mapstructure:"pod_log_dir"`
	ContainerLogDir  string `mapstructure:"container_log_dir"`
	MetricAttributes bool   `mapstructure:"metric_attributes"`
}

// ProtocolConfig selects the requests of one protocol that become log records. Every
// request is measured in the histograms and every failure counted, whatever it says.
type ProtocolConfig struct {
	// LatencyThreshold makes a request slow, and a log record, at or above it.
	LatencyThreshold time.Duration `mapstructure:"latency_threshold"`
	// CommandThresholds override LatencyThreshold per command, by the protocol's
	// command names ("SMB2_READ" or "READ"; "NFSPROC4_CLNT_READ", "READ" or
	// "NFS3PROC_READ").
	CommandThresholds map[string]time.Duration `mapstructure:"command_thresholds"`
	// ExcludeCommands never produce slow-request records (they are still measured).
	ExcludeCommands []string `mapstructure:"exclude_commands"`
	// TrackErrors lists the failures that become log records: the protocol's status
	// names ("STATUS_ACCESS_DENIED", "NFS4ERR_STALE"), errno names ("EACCES"), or "all".
	// Every failure is counted in the errors metric whatever this says.
	TrackErrors []string `mapstructure:"track_errors"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// createDefaultConfig takes every default from the engine that applies it (ingest,
// ringreader, bpf) or, for the slow-request threshold, from aod's configuration,
// where it is AODv2's default_threshold_ms.
func createDefaultConfig() *Config {
	return &Config{
		CollectionInterval: ingest.DefaultCollectionInterval,
		Histogram:          HistogramExponential,
		StaleRequestAge:    ingest.DefaultStaleAge,
		FlushInterval:      ringreader.DefaultFlushInterval,
		RingBufferBytes:    bpf.DefaultRingBytes,
		CardinalityLimit:   config.DefaultCardinalityLimit,
		SMB: ProtocolConfig{
			LatencyThreshold: config.DefaultLatencyThreshold,
			// CHANGE_NOTIFY waits for a change by design: it is always "slow".
			ExcludeCommands: []string{"SMB2_CHANGE_NOTIFY"},
			TrackErrors:     []string{TrackAllErrors},
		},
		NFS: ProtocolConfig{
			LatencyThreshold: config.DefaultLatencyThreshold,
			TrackErrors:      []string{TrackAllErrors},
		},
	}
}

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	if c.CollectionInterval <= 0 {
		errs = append(errs, fmt.Errorf("collection_interval must be positive, not %v", c.CollectionInterval))
	}
	if c.Histogram != HistogramExponential && c.Histogram != HistogramExplicit {
		errs = append(errs, fmt.Errorf("histogram must be %q or %q, not %q", HistogramExponential, HistogramExplicit, c.Histogram))
	}
	if c.StaleRequestAge <= 0 {
		errs = append(errs, fmt.Errorf("stale_request_age must be positive, not %v", c.StaleRequestAge))
	}
	if c.FlushInterval <= 0 || c.FlushInterval > maxFlushInterval {
		errs = append(errs, fmt.Errorf("flush_interval must be in (0, %v], not %v", maxFlushInterval, c.FlushInterval))
	}
	if c.RingBufferBytes != 0 && c.RingBufferBytes&(c.RingBufferBytes-1) != 0 {
		errs = append(errs, fmt.Errorf("ring_buffer_bytes must be a power of two, not %d", c.RingBufferBytes))
	}
	if c.CardinalityLimit < 1 || c.CardinalityLimit > config.MaxCardinalityLimit {
		errs = append(errs, fmt.Errorf("cardinality_limit must be in [1, %d], not %d", config.MaxCardinalityLimit, c.CardinalityLimit))
	}
	for _, err := range c.SMB.validate(smb.Table) {
		errs = append(errs, fmt.Errorf("smb.%w", err))
	}
	for _, err := range c.NFS.validate(nfs.Table) {
		errs = append(errs, fmt.Errorf("nfs.%w", err))
	}
	return errors.Join(errs...)
}

// validate returns every problem of the section of protocol t, each starting with its
// key.
func (c *ProtocolConfig) validate(t *proto.Table) []error {
	var errs []error
	if c.LatencyThreshold < 0 {
		errs = append(errs, fmt.Errorf("latency_threshold must not be negative, not %v", c.LatencyThreshold))
	}
	for name, d := range c.CommandThresholds {
		if _, ok := t.LookupCommand(name); !ok {
			errs = append(errs, fmt.Errorf("command_thresholds: unknown %s %q", t.CommandNoun, name))
		}
		if d < 0 {
			errs = append(errs, fmt.Errorf("command_thresholds: %s must not be negative, not %v", name, d))
		}
	}
	for _, name := range c.ExcludeCommands {
		if _, ok := t.LookupCommand(name); !ok {
			errs = append(errs, fmt.Errorf("exclude_commands: unknown %s %q", t.CommandNoun, name))
		}
	}
	if _, err := errorFilter(t, c.TrackErrors); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// errorTargets are what track_errors resolves to.
type errorTargets struct {
	all      bool
	statuses []uint32
	errnos   []int32
}

// errorFilter resolves names against t's statuses, then errno names.
func errorFilter(t *proto.Table, names []string) (errorTargets, error) {
	var et errorTargets
	var unknown []string
	for _, name := range names {
		if strings.EqualFold(name, TrackAllErrors) {
			et.all = true
			continue
		}
		// NFS names an RPC-level failure by its errno among its statuses.
		if code, ok := t.LookupStatus(name); ok {
			et.statuses = append(et.statuses, code)
			continue
		}
		if errno, ok := errno.Lookup(name); ok {
			et.errnos = append(et.errnos, errno)
			continue
		}
		unknown = append(unknown, fmt.Sprintf("%q", name))
	}
	if len(unknown) > 0 {
		return et, fmt.Errorf("track_errors: %s: not a %s status name, an errno name or %q", strings.Join(unknown, ", "), t.Protocol, TrackAllErrors)
	}
	return et, nil
}
