//go:build !linux

package bpf

import (
	"context"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/linuxdiag/aod/internal/smb"
)

// Probes are aod's kernel probes; on this system they cannot be loaded and every
// method returns ErrUnsupported.
type Probes struct{}

// Load returns ErrUnsupported: the probes need Linux.
func Load(Options) (*Probes, error) { return nil, ErrUnsupported }

// Close does nothing.
func (*Probes) Close() error { return nil }

// Attach returns ErrUnsupported.
func (*Probes) Attach(context.Context) (AttachReport, error) { return AttachReport{}, ErrUnsupported }

// NewReader returns ErrUnsupported.
func (*Probes) NewReader() (*ringbuf.Reader, error) { return nil, ErrUnsupported }

// SetThresholds returns ErrUnsupported.
func (*Probes) SetThresholds(*[smb.NumCommands]Threshold) error { return ErrUnsupported }

// SetErrorFilter returns ErrUnsupported.
func (*Probes) SetErrorFilter(ErrorFilter) error { return ErrUnsupported }

// Counters returns ErrUnsupported.
func (*Probes) Counters() (Counters, error) { return Counters{}, ErrUnsupported }

// ProgramStats returns ErrUnsupported.
func (*Probes) ProgramStats() (map[string]*ebpf.ProgramStats, error) { return nil, ErrUnsupported }

// Histograms returns ErrUnsupported.
func (*Probes) Histograms(dst []HistogramSample) ([]HistogramSample, error) {
	return dst[:0], ErrUnsupported
}

// Errors returns ErrUnsupported.
func (*Probes) Errors(dst []ErrorSample) ([]ErrorSample, error) { return dst[:0], ErrUnsupported }

// InFlight returns ErrUnsupported.
func (*Probes) InFlight(dst []InFlightRequest) ([]InFlightRequest, error) {
	return dst[:0], ErrUnsupported
}

// SweepStale returns ErrUnsupported.
func (*Probes) SweepStale(time.Duration) (int, error) { return 0, ErrUnsupported }

// PruneSessions returns ErrUnsupported.
func (*Probes) PruneSessions(func(sessionID uint64) bool) (int, error) { return 0, ErrUnsupported }
