package detector

import (
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/proto"
)

// FromConfig builds the parameters of the detectors of t's protocol from a loaded
// configuration: the anomalies the file configures under that protocol, windowed by
// watch_interval_sec and tuned by its detection section. The result still goes
// through New's validation.
func FromConfig(c *config.Config, t *proto.Table) Params {
	var p Params
	pc := c.Anomalies.Of(t.Protocol)
	d := c.Detection
	if l := pc.Latency; l != nil {
		lp := LatencyParams{
			AcceptableCount: l.AcceptableCount,
			Window:          c.WatchInterval,
			Ceiling:         d.LatencyCeiling,
			Cooldown:        d.Cooldown,
			MaxEvents:       d.MaxEvents,
		}
		for code := range t.NumCommands() {
			th, ok := l.Threshold(t, uint16(code))
			lp.Commands[code] = CommandThreshold{Tracked: ok, Threshold: th}
		}
		p.Latency = &lp
	}
	if e := pc.Error; e != nil {
		ep := ErrorParams{Window: c.WatchInterval, Cooldown: d.Cooldown, MaxEvents: d.MaxEvents}
		for i := range e.Rules {
			r := &e.Rules[i]
			m := r.Match(t)
			var cmds proto.CommandSet
			for _, code := range m.Commands {
				cmds = cmds.With(code)
			}
			ep.Rules = append(ep.Rules, ErrorRule{
				Name:            r.Name,
				AcceptableCount: r.AcceptableCount,
				Commands:        cmds,
				Statuses:        m.Statuses,
				Errnos:          m.Errnos,
			})
		}
		p.Errors = &ep
	}
	if s := pc.Sockconn; s != nil {
		p.Sockconn = &SockconnParams{
			AcceptableCount: s.AcceptableCount,
			Window:          c.WatchInterval,
			Cooldown:        d.Cooldown,
			MaxEvents:       d.MaxEvents,
		}
	}
	return p
}
