//go:build !linux

package agent

import (
	"context"
	"errors"
	"log/slog"

	"github.com/linuxdiag/aod/internal/config"
)

// Options are what the agent needs besides its configuration.
type Options struct {
	Logger        *slog.Logger
	ControlSocket string
	ProcDir       string
	MountStats    string
}

// Agent is one running aod. It needs Linux: the kernel probes are eBPF on the cifs
// module's tracepoints.
type Agent struct{}

var errNotLinux = errors.New("aod run needs Linux: its probes are eBPF programs on the kernel's cifs tracepoints")

// New fails: see errNotLinux.
func New(*config.Config, Options) (*Agent, error) { return nil, errNotLinux }

// Start fails: see errNotLinux.
func (*Agent) Start(context.Context) error { return errNotLinux }

// Shutdown does nothing.
func (*Agent) Shutdown(context.Context) error { return nil }

// Reload fails: see errNotLinux.
func (*Agent) Reload(context.Context, *config.Config) error { return errNotLinux }

// Snapshot fails: see errNotLinux.
func (*Agent) Snapshot(context.Context) (string, error) { return "", errNotLinux }

// ReloadRejected does nothing.
func (*Agent) ReloadRejected() {}
