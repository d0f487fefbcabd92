package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/linuxdiag/aod/agent"
	"github.com/linuxdiag/aod/configs"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/control"
	"github.com/linuxdiag/aod/internal/version"
)

// shutdownTimeout bounds a clean stop: flushing exports, finishing bundles in
// progress and detaching the probes.
const shutdownTimeout = 20 * time.Second

// run is `aod run [--config FILE]`.
func (c *cli) run(ctx context.Context, args []string) int {
	fs := c.newFlags("run")
	file := fs.String("config", "", "configuration file (default: the embedded configs/aod.yaml)")
	sock := fs.String("control-socket", control.DefaultPath, "socket for aod top and aod snapshot (empty: none)")
	stopWithin := fs.Duration("shutdown-timeout", shutdownTimeout, "how long a clean stop may take before aod exits anyway")
	if code, done := c.parse(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return c.usageError("run takes no arguments, got %q", fs.Args())
	}
	if *stopWithin <= 0 {
		return c.usageError("--shutdown-timeout must be positive, got %v", *stopWithin)
	}
	log, _ := c.logger(c.stderr) // parse checked the flags
	source := *file
	if source == "" {
		source = configs.DefaultName
	}
	procs := agent.LimitProcs()
	log.Info("aod starting", "version", version.Version, "commit", version.Revision(), "config", source, "gomaxprocs", procs)
	cfg, ok := loadLogged(*file, log)
	if !ok {
		log.Error("invalid configuration; not starting", "config", source)
		return exitFailure
	}
	if err := runAgent(ctx, cfg, agent.Options{Logger: log, ControlSocket: *sock}, *stopWithin, func() (*config.Config, bool) {
		return loadLogged(*file, log)
	}); err != nil {
		log.Error("agent failed", "err", err)
		return exitFailure
	}
	return exitOK
}

// loadLogged loads the configuration, logging every warning and problem.
func loadLogged(file string, log *slog.Logger) (*config.Config, bool) {
	cfg, warnings, err := loadConfig(file)
	for _, w := range warnings {
		log.Warn("configuration", "warning", w.String())
	}
	if err != nil {
		var cerr *config.Error
		if errors.As(err, &cerr) {
			for _, is := range cerr.Issues {
				log.Error("configuration", "problem", is.String())
			}
			if more := cerr.MoreLine(); more != "" {
				log.Error("configuration", "problem", more)
			}
		} else {
			log.Error("configuration", "problem", err)
		}
		return nil, false
	}
	return cfg, true
}

// runAgent runs the agent until ctx is cancelled (SIGINT, SIGTERM), then stops it
// within stopWithin. SIGHUP reloads the configuration (a bad one is logged and the
// running one stays); SIGUSR1 writes an on-demand snapshot bundle.
func runAgent(ctx context.Context, cfg *config.Config, o agent.Options, stopWithin time.Duration, reload func() (*config.Config, bool)) error {
	log := o.Logger
	a, err := agent.New(cfg, o)
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sig)
	if err := a.Start(ctx); err != nil {
		return errors.Join(err, shutdown(a, stopWithin))
	}
	var snapshots sync.WaitGroup
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case s := <-sig:
			switch s {
			case syscall.SIGHUP:
				log.Info("SIGHUP: reloading the configuration")
				next, ok := reload()
				if !ok {
					a.ReloadRejected()
					log.Error("new configuration rejected; the running one stays in force")
					continue
				}
				if err := a.Reload(ctx, next); err != nil {
					log.Error("reload failed; the running configuration stays in force", "err", err)
					continue
				}
				log.Info("configuration reloaded")
			case syscall.SIGUSR1:
				snapshots.Add(1)
				go func() {
					defer snapshots.Done()
					if _, err := a.Snapshot(ctx); err != nil {
						log.Error("snapshot failed", "err", err)
					}
				}()
			}
		}
	}
	log.Info("aod stopping", "reason", context.Cause(ctx))
	err = shutdown(a, stopWithin)
	snapshots.Wait()
	return err
}

// shutdown stops the agent, giving up after timeout: an exporter's shutdown waits
// for its export in flight whatever its context says, and a collector that never
// answers would hold the stop for the export's own timeout (up to 10 minutes).
func shutdown(a *agent.Agent, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Shutdown(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("the clean stop did not finish within %v (--shutdown-timeout); exiting without it", timeout)
	}
}
