package bundler

import (
	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/capture"
	"github.com/linuxdiag/aod/internal/config"
)

// FromConfig maps the agent's configuration to Options. The configuration has
// already checked capture arguments and bound each capture tool to one protocol with
// one argument list, so each tool yields one capture. The caller adds what the file
// does not hold: Logger, Inflight.
func FromConfig(c *config.Config) Options {
	o := Options{
		OutputDir:       c.OutputDir,
		Actions:         map[Key][]string{},
		ActionTimeout:   c.Collection.Timeout,
		Lookback:        c.Collection.Lookback,
		MaxActionBytes:  c.Collection.MaxOutput,
		Concurrency:     c.Collection.Concurrency,
		ZstdLevel:       c.Bundle.ZstdLevel,
		CleanupInterval: c.Cleanup.Interval,
		MaxAge:          c.Cleanup.MaxAge,
		MaxTotalBytes:   c.Cleanup.MaxTotalSize,
		MinFreeBytes:    c.Bundle.MinFree,
	}
	seen := map[string]bool{}
	add := func(proto, typ string, list []config.Action) {
		names := make([]string, 0, len(list))
		for _, a := range list {
			names = append(names, a.Name)
			if a.IsCapture() && !seen[a.Name] {
				seen[a.Name] = true
				o.Captures = append(o.Captures, capture.Spec{Protocol: proto, Tool: a.Name, Args: a.Args})
			}
		}
		o.Actions[Key{proto, typ}] = names
	}
	for _, p := range []struct {
		name string
		p    *config.Protocol
	}{{config.ProtocolSMB, &c.Anomalies.SMB}, {config.ProtocolNFS, &c.Anomalies.NFS}, {config.ProtocolIO, &c.Anomalies.IO}} {
		if l := p.p.Latency; l != nil {
			add(p.name, anomaly.TypeLatency, l.Actions)
		}
		if e := p.p.Error; e != nil {
			add(p.name, anomaly.TypeError, e.Actions)
		}
		if s := p.p.Sockconn; s != nil {
			add(p.name, anomaly.TypeSockconn, s.Actions)
		}
	}
	return o
}
