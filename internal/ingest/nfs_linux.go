//go:build linux

package ingest

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/nfsproc"
	"github.com/linuxdiag/aod/internal/proto"
)

// NFSKernel is what the receiver reads from the NFS client probes, and what its owner
// changes while they run; *bpf.NFSProbes implements it. The probes write their records
// to the ring and their losses to the counters of the Kernel they were loaded on.
type NFSKernel interface {
	SetV4Procedures(codes []uint16) error
	SetThresholds(t *[proto.MaxCommands]bpf.Threshold) error
	SetErrorFilter(f bpf.ErrorFilter) error
	Histograms(dst []bpf.NFSHistogramSample) ([]bpf.NFSHistogramSample, error)
	Errors(dst []bpf.ErrorSample) ([]bpf.ErrorSample, error)
}

// NFSProbeConfig configures the NFS probes the receiver loads itself.
type NFSProbeConfig struct {
	// Off leaves the NFS probes unloaded.
	Off     bool
	Options bpf.NFSOptions
	// Thresholds are the per-procedure slow-RPC rules, indexed by NFS procedure code
	// (internal/nfs); nil tracks nothing.
	Thresholds *[proto.MaxCommands]bpf.Threshold
	// Errors selects the failed RPCs that become events.
	Errors bpf.ErrorFilter
}

// sysModule is where a loaded kernel module shows (a variable for tests).
var sysModule = "/sys/module"

// nfsModules are the modules whose tracepoints the NFS programs use: sunrpc has the
// one they need, nfs (NFSv3 statuses) and nfsv4 (NFSv4 statuses) load later, with the
// first mount of their version.
var nfsModules = [...]string{"sunrpc", "nfs", "nfsv4"}

// loadNFS loads the NFS programs onto p with the configured filters. Failing is not
// fatal: SMB is still watched, and the reason is logged.
func (r *Receiver) loadNFS(p *bpf.Probes) *bpf.NFSProbes {
	c := r.set.Probes.NFS
	if c.Off {
		return nil
	}
	n, err := p.LoadNFS(c.Options)
	if err == nil {
		err = setNFSFilters(n, c.Thresholds, c.Errors)
		if err != nil {
			n.Close()
		}
	}
	if err != nil {
		r.log.Error("NFS probes not loaded: no NFS RPC is measured", "error", err)
		r.setHooks(&r.nfsHooks, bpf.NFSNotLoaded(err))
		return nil
	}
	return n
}

func setNFSFilters(n NFSKernel, th *[proto.MaxCommands]bpf.Threshold, ef bpf.ErrorFilter) error {
	if th == nil {
		th = &[proto.MaxCommands]bpf.Threshold{}
	}
	if err := n.SetThresholds(th); err != nil {
		return err
	}
	return n.SetErrorFilter(ef)
}

// setV4Order tells the NFS probes the running kernel's NFSv4 procedure order, which
// mountstats lists for every NFSv4 mount, when it differs from what they were last
// told: kernels after 6.12 inserted procedures (7.3: ZERO_RANGE at 57), and until the
// first NFSv4 mount shows the order the probes assume 6.12's.
func (r *Receiver) setV4Order(mounts []nfsproc.Mount) error {
	codes := nfsproc.V4Order(mounts)
	if codes == nil || slices.Equal(codes, r.snapshot.v4Codes) {
		return nil
	}
	if err := r.nfs.SetV4Procedures(codes); err != nil {
		return err
	}
	r.snapshot.v4Codes = codes
	return nil
}

// attacher attaches and detaches programs; *bpf.NFSProbes is one.
type attacher interface {
	Attach() ([]bpf.TracepointStatus, error)
	Detach()
}

// attachNFS attaches the NFS programs once sunrpc is loaded, and again each time one
// of the modules is loaded that was not when they were last attached, so that the
// nfs and nfsv4 status tracepoints are watched from the first mount of each version.
// It returns once all three are loaded and the programs attached: a raw tracepoint
// attached to a module's tracepoint holds the module, so nothing can change after.
func (r *Receiver) attachNFS(ctx context.Context, n attacher) {
	every := r.set.Probes.Options.ModulePollInterval
	if every <= 0 {
		every = bpf.DefaultModulePollInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var seen [len(nfsModules)]bool
	attached, waiting := false, false // retried only when the modules change
	for {
		now := loadedModules()
		switch {
		case !now[0]:
			if !waiting {
				r.log.Info("sunrpc kernel module not loaded: waiting for it to attach the NFS probes")
				waiting = true
			}
		case now != seen:
			if attached {
				n.Detach()
			}
			report, err := n.Attach()
			attached = err == nil
			r.nfsEnds.Store(attached && reportsEnds(report))
			r.setHooks(&r.nfsHooks, bpf.TracepointHooks("nfs", report))
			if err != nil {
				r.log.Error("NFS probes not attached: no NFS RPC is measured", "error", err)
			} else {
				r.log.Info("NFS probes attached", "tracepoints", attachedNames(report))
			}
			seen = now
		}
		if attached && !slices.Contains(seen[:], false) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func loadedModules() (m [len(nfsModules)]bool) {
	for i, name := range nfsModules {
		_, err := os.Stat(filepath.Join(sysModule, name))
		m[i] = err == nil
	}
	return m
}

// reportsEnds tells whether both disconnect tracepoints are attached: the programs
// then report how each connection ends.
func reportsEnds(report []bpf.TracepointStatus) bool {
	n := 0
	for _, st := range report {
		if st.Attached && (st.Name == "xprt_disconnect_force" || st.Name == "xprt_disconnect_auto") {
			n++
		}
	}
	return n == 2
}

func attachedNames(report []bpf.TracepointStatus) []string {
	var names []string
	for _, st := range report {
		if st.Attached {
			names = append(names, st.Name)
		}
	}
	return names
}
