//go:build !linux

package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/control"
)

func watchProbes(context.Context, *config.Config, *slog.Logger, func([]bpf.HookStatus), func(control.Record)) error {
	return errors.New("aod's probes need Linux: eBPF on the kernel's cifs tracepoints")
}
