//go:build linux

package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/cifsproc"
	"github.com/linuxdiag/aod/internal/mountinfo"
	"github.com/linuxdiag/aod/internal/proto"
)

// IOKernel is what the receiver reads from the io probe (failed file operations), and
// what its owner changes while it runs; *bpf.IOProbes implements it. The probe writes
// its records to the ring and its losses to the counters of the Kernel it was loaded
// on.
type IOKernel interface {
	SetScope(s bpf.IOScope) error
	SetErrorFilter(f bpf.IOErrorFilter) error
	Errors(dst []bpf.IOErrorSample) ([]bpf.IOErrorSample, error)
}

// IOProbeConfig configures the io probe the receiver loads itself.
type IOProbeConfig struct {
	// Off leaves the io probe unloaded.
	Off bool
	// FileSystems are the file system types whose mounts are watched, as mountinfo
	// names them; "all" alone watches every mount. Empty: nothing is watched.
	FileSystems []string
	// Errors selects the failures that become events.
	Errors bpf.IOErrorFilter
}

// ioMounts is the mount table as the io probe was last told it: it names the mounts
// of the io series and records, and says when the probe's scope must be refreshed.
type ioMounts struct {
	mu   sync.RWMutex
	byID map[uint32]mountinfo.Mount
	raw  []byte // the mountinfo the scope was built from
	long map[string]bool
}

// lookup names a mount for the resolver: its file system type and mount point. An
// unknown mount (id 0: a failure whose file the probe could not find) is named by its
// magic's type alone.
func (m *ioMounts) lookup(id uint32, magic uint32) (cifsproc.Name, bool) {
	m.mu.RLock()
	mt, ok := m.byID[id]
	m.mu.RUnlock()
	if ok {
		return cifsproc.Name{Server: mt.FSType, Share: mt.Point}, true
	}
	return cifsproc.Name{Server: mountinfo.TypeOfMagic(magic)}, false
}

// loadIO loads the io probe onto p with the configured filters and scope, and
// attaches it (sys_exit always exists). Failing is not fatal: SMB and NFS are still
// watched, and the reason is logged.
func (r *Receiver) loadIO(p *bpf.Probes) *bpf.IOProbes {
	c := r.set.Probes.IO
	if c.Off || len(c.FileSystems) == 0 {
		return nil
	}
	if !bpf.IOSupported {
		r.log.Warn("the io probe is not built for this architecture: failed file operations are not watched")
		return nil
	}
	io, err := p.LoadIO()
	if err == nil {
		err = io.SetErrorFilter(c.Errors)
		if err == nil {
			r.io = io
			err = r.refreshIOScope()
		}
		if err == nil {
			err = io.Attach()
		}
		if err != nil {
			io.Close()
			r.io = nil
		}
	}
	if err != nil {
		r.log.Error("io probe not loaded: failed file operations are not watched", "error", err)
		return nil
	}
	r.log.Info("io probe attached", "file_systems", c.FileSystems)
	return io
}

// refreshIOScope re-reads the mount table and, when it changed, gives the io probe
// the mounts in scope.
func (r *Receiver) refreshIOScope() error {
	if r.io == nil {
		return nil
	}
	raw, err := os.ReadFile(r.cfg.MountInfo)
	if err != nil {
		return fmt.Errorf("io scope: %w", err)
	}
	m := &r.ioMounts
	if bytes.Equal(raw, m.raw) {
		return nil
	}
	mounts, err := mountinfo.Parse(r.cfg.MountInfo, bytes.NewReader(raw))
	if err != nil && len(mounts) == 0 {
		return fmt.Errorf("io scope: %w", err)
	}
	scope, long := ioScope(mounts, r.set.Probes.IO.FileSystems)
	for _, p := range long {
		if !m.long[p] {
			r.log.Warn("io: mount point too long for the probe: absolute paths under it are not attributed to it", "mount", p)
			if m.long == nil {
				m.long = map[string]bool{}
			}
			m.long[p] = true
		}
	}
	if serr := r.io.SetScope(scope); serr != nil {
		return errors.Join(err, serr)
	}
	byID := make(map[uint32]mountinfo.Mount, len(mounts))
	for _, mt := range mounts {
		byID[mt.ID] = mt
	}
	m.mu.Lock()
	m.byID, m.raw = byID, raw
	m.mu.Unlock()
	return err
}

// ioMountPointMax is the longest mount point the probe can match absolute paths
// against (include/aod.h AOD_IO_PATH_MAX, less the trailing '/' and NUL).
const ioMountPointMax = 126

// ioScope is the probe's scope for a mount table and the file system types watched;
// it also returns the mount points in scope too long for the probe's path match.
func ioScope(mounts []mountinfo.Mount, types []string) (bpf.IOScope, []string) {
	var s bpf.IOScope
	s.All = slices.Equal(types, []string{"all"})
	if !s.All {
		for _, t := range types {
			if m, ok := mountinfo.Magic(t); ok && !slices.Contains(s.Magics, m) {
				s.Magics = append(s.Magics, m)
			}
		}
	}
	var long []string
	for _, mt := range mounts {
		if !s.All && !slices.Contains(types, mt.FSType) {
			continue
		}
		if len(mt.Point) > ioMountPointMax || len(mt.Point) == 0 || mt.Point[0] != '/' {
			long = append(long, mt.Point)
			continue
		}
		magic, _ := mountinfo.Magic(mt.FSType)
		s.Mounts = append(s.Mounts, bpf.IOMount{Point: mt.Point, ID: mt.ID, Magic: magic})
	}
	return s, long
}

// readIO appends the io probe's failure counts to the snapshot's error samples, as
// samples of protocol io: Command the operation, SessionID the mount id, TreeID the
// file system's magic, Status the errno.
func (r *Receiver) readIO() error {
	if r.io == nil {
		return nil
	}
	st := &r.snapshot
	var err error
	st.ioErrs, err = r.io.Errors(st.ioErrs)
	for _, s := range st.ioErrs {
		st.errs = append(st.errs, bpf.ErrorSample{Protocol: proto.IO, Command: s.Op, SessionID: uint64(s.MountID),
			TreeID: s.Magic, Status: uint32(s.Errno), Count: s.Count})
	}
	return err
}
