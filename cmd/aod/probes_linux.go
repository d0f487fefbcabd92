package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/linuxdiag/aod/agent"
	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/control"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/ingest"
	"github.com/linuxdiag/aod/internal/version"
	"github.com/linuxdiag/aod/internal/wallclock"
)

// watchProbes loads aod's probes with cfg's thresholds and hands every slow or failed
// request to fn until ctx ends: `aod top` when no agent runs. It exports nothing and
// writes no bundles.
func watchProbes(ctx context.Context, cfg *config.Config, log *slog.Logger, hooks func([]bpf.HookStatus), fn func(control.Record)) error {
	th, ef := agent.KernelFilters(cfg)
	nth, nef := agent.NFSKernelFilters(cfg)
	clock := wallclock.New(time.Minute)
	var recv *ingest.Receiver
	recv, err := ingest.New(ingest.Settings{
		Probes: ingest.ProbeConfig{Thresholds: th, Errors: ef,
			NFS: ingest.NFSProbeConfig{Thresholds: nth, Errors: nef}},
		Logger:  log,
		Version: version.Version,
		OnAttach: func(_ bpf.AttachReport, err error) {
			if err != nil {
				log.Error("kernel probes not attached", "err", err)
			}
			// The SMB programs' hooks, and the NFS programs' when sunrpc was loaded already.
			hooks(recv.Hooks())
		},
	}, ingest.Consumers{Events: func(batch []event.Event) {
		for i := range batch {
			e := &batch[i]
			n, _ := recv.Resolver().Lookup(e.Protocol, e.SessionID, e.TreeID)
			fn(control.NewRecord(e, clock.Time(e.EndNs), n.Server, n.Share))
		}
	}})
	if err != nil {
		return err
	}
	if err := recv.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return recv.Shutdown(sctx)
}
