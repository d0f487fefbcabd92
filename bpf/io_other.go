//go:build !(linux && amd64)

package bpf

import "github.com/cilium/ebpf"

// IOProbes are aod's io probe; it is built for Linux on x86-64 only (it reads the
// system call's arguments from x86-64 registers), and elsewhere every method returns
// ErrUnsupported.
type IOProbes struct{}

// IOSupported reports whether the io probe is built for this architecture.
const IOSupported = false

// LoadIO returns ErrUnsupported.
func (*Probes) LoadIO() (*IOProbes, error) { return nil, ErrUnsupported }

// Attach returns ErrUnsupported.
func (*IOProbes) Attach() error { return ErrUnsupported }

// Detach does nothing.
func (*IOProbes) Detach() {}

// Close does nothing.
func (*IOProbes) Close() error { return nil }

// SetScope returns ErrUnsupported.
func (*IOProbes) SetScope(IOScope) error { return ErrUnsupported }

// SetErrorFilter returns ErrUnsupported.
func (*IOProbes) SetErrorFilter(IOErrorFilter) error { return ErrUnsupported }

// Errors returns ErrUnsupported.
func (*IOProbes) Errors(dst []IOErrorSample) ([]IOErrorSample, error) { return dst[:0], ErrUnsupported }

// ProgramStats returns ErrUnsupported.
func (*IOProbes) ProgramStats() (map[string]*ebpf.ProgramStats, error) { return nil, ErrUnsupported }
