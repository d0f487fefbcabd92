// Package agent is the standalone aod: it runs the receiver, the detectors and the
// bundle exporter in one process, sends their telemetry out through internal/telemetry,
// and serves the control socket. Each stage is the same code the collector components
// wrap; the agent only connects them, without a pdata round trip per event.
package agent

import (
	"slices"
	"time"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/detector"
	fileio "github.com/linuxdiag/aod/internal/io"
	"github.com/linuxdiag/aod/internal/nfs"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/smb"
)

// KernelFilters is what the kernel must pass up for cfg's SMB detectors: the
// per-command slow thresholds and the failures to report.
func KernelFilters(cfg *config.Config) (*[smb.NumCommands]bpf.Threshold, bpf.ErrorFilter) {
	all, ef := kernelFilters(detector.FromConfig(cfg, smb.Table))
	return (*[smb.NumCommands]bpf.Threshold)(all[:smb.NumCommands]), ef
}

// NFSKernelFilters is what the NFS probes must pass up for cfg's NFS detectors
// (anomalies.nfs): the per-procedure slow thresholds and the failures to report.
func NFSKernelFilters(cfg *config.Config) (*[proto.MaxCommands]bpf.Threshold, bpf.ErrorFilter) {
	return kernelFilters(detector.FromConfig(cfg, nfs.Table))
}

// IOKernelFilters is what the io probe must pass up for cfg's io detectors
// (anomalies.io): the (operation, errno) pairs some error rule counts. A rule with
// operations and errnos tracks their pairs; one with only operations every errno of
// them; one with only errnos those errnos of every operation.
func IOKernelFilters(cfg *config.Config) bpf.IOErrorFilter {
	var f bpf.IOErrorFilter
	e := detector.FromConfig(cfg, fileio.Table).Errors
	if e == nil {
		return f
	}
	for _, r := range e.Rules {
		ops := []int{-1}
		if !r.Commands.IsEmpty() {
			ops = ops[:0]
			for code := range r.Commands.All() {
				ops = append(ops, int(code))
			}
		}
		errnos := []int32{0}
		if len(r.Statuses) > 0 {
			errnos = errnos[:0]
			for _, s := range r.Statuses {
				errnos = append(errnos, int32(s))
			}
		}
		for _, op := range ops {
			for _, e := range errnos {
				f.Pairs = append(f.Pairs, bpf.IOPair{Op: op, Errno: e})
			}
		}
	}
	return f
}

// ioFileSystems is the io probe's scope for cfg: detection.io_filesystems when an io
// anomaly is configured, else none (the probe is not loaded).
func ioFileSystems(cfg *config.Config) []string {
	if cfg.Anomalies.IO.Error == nil {
		return nil
	}
	return cfg.Detection.IOFileSystems
}

// filterSet is what every protocol's probes must pass up for one configuration.
type filterSet struct {
	smbTh *[smb.NumCommands]bpf.Threshold
	smbEf bpf.ErrorFilter
	nfsTh *[proto.MaxCommands]bpf.Threshold
	nfsEf bpf.ErrorFilter
	ioEf  bpf.IOErrorFilter
}

func filtersOf(cfg *config.Config) filterSet {
	var f filterSet
	f.smbTh, f.smbEf = KernelFilters(cfg)
	f.nfsTh, f.nfsEf = NFSKernelFilters(cfg)
	f.ioEf = IOKernelFilters(cfg)
	return f
}

// kernelFilters derives what the kernel must pass up from what the detectors need:
// a request reaches user space when some detector could count it. A tracked command's
// kernel threshold is the lower of its own threshold and the single-request ceiling,
// since either can fire; a failure goes up when any error rule could match it.
func kernelFilters(p detector.Params) (*[proto.MaxCommands]bpf.Threshold, bpf.ErrorFilter) {
	var th [proto.MaxCommands]bpf.Threshold
	if l := p.Latency; l != nil {
		for code, c := range l.Commands {
			if !c.Tracked {
				continue
			}
			lat := c.Threshold
			if ceil := ceiling(l); ceil > 0 && ceil < lat {
				lat = ceil
			}
			th[code] = bpf.Threshold{Tracked: true, Latency: lat}
		}
	}
	var f bpf.ErrorFilter
	if e := p.Errors; e != nil {
		for _, r := range e.Rules {
			if len(r.Statuses) == 0 && len(r.Errnos) == 0 {
				// A rule with no error axis matches every failure of its commands.
				return &th, bpf.ErrorFilter{All: true}
			}
			f.Statuses = append(f.Statuses, r.Statuses...)
			f.Errnos = append(f.Errnos, r.Errnos...)
		}
	}
	slices.Sort(f.Statuses)
	f.Statuses = slices.Compact(f.Statuses)
	slices.Sort(f.Errnos)
	f.Errnos = slices.Compact(f.Errnos)
	return &th, f
}

// ceiling is the effective single-request ceiling: 0 means the default, negative off.
func ceiling(l *detector.LatencyParams) time.Duration {
	if l.Ceiling == 0 {
		return detector.DefaultCeiling
	}
	return l.Ceiling
}
