//go:build !linux

package bpf

import (
	"github.com/cilium/ebpf"

	"github.com/linuxdiag/aod/internal/proto"
)

// NFSProbes are aod's NFS client probes; on this system they cannot be loaded and
// every method returns ErrUnsupported.
type NFSProbes struct{}

// LoadNFS returns ErrUnsupported: the probes need Linux.
func (*Probes) LoadNFS(NFSOptions) (*NFSProbes, error) { return nil, ErrUnsupported }

// Attach returns ErrUnsupported.
func (*NFSProbes) Attach() ([]TracepointStatus, error) { return nil, ErrUnsupported }

// Detach does nothing.
func (*NFSProbes) Detach() {}

// Close does nothing.
func (*NFSProbes) Close() error { return nil }

// SetV4Procedures returns ErrUnsupported.
func (*NFSProbes) SetV4Procedures([]uint16) error { return ErrUnsupported }

// SetThresholds returns ErrUnsupported.
func (*NFSProbes) SetThresholds(*[proto.MaxCommands]Threshold) error { return ErrUnsupported }

// SetErrorFilter returns ErrUnsupported.
func (*NFSProbes) SetErrorFilter(ErrorFilter) error { return ErrUnsupported }

// Histograms returns ErrUnsupported.
func (*NFSProbes) Histograms(dst []NFSHistogramSample) ([]NFSHistogramSample, error) {
	return dst[:0], ErrUnsupported
}

// Errors returns ErrUnsupported.
func (*NFSProbes) Errors(dst []ErrorSample) ([]ErrorSample, error) { return dst[:0], ErrUnsupported }

// ProgramStats returns ErrUnsupported.
func (*NFSProbes) ProgramStats() (map[string]*ebpf.ProgramStats, error) { return nil, ErrUnsupported }
