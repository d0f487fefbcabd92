package detector

import (
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/smb"
)

// FromConfig builds the SMB detectors' parameters from a loaded configuration: the
// anomalies the file configures under smb, windowed by watch_interval_sec and tuned by
// its detection section. The result still goes through New's validation.
func FromConfig(c *config.Config) Params {
	var p Params
	smbc := c.Anomalies.SMB
	d := c.Detection
	if l := smbc.Latency; l != nil {
		lp := LatencyParams{
			AcceptableCount: l.AcceptableCount,
			Window:          c.WatchInterval,
			Ceiling:         d.LatencyCeiling,
			Cooldown:        d.Cooldown,
			MaxEvents:       d.MaxEvents,
		}
		for code := range lp.Commands {
			th, ok := l.SMBThreshold(uint16(code))
			lp.Commands[code] = CommandThreshold{Tracked: ok, Threshold: th}
		}
		p.Latency = &lp
	}
	if e := smbc.Error; e != nil {
		ep := ErrorParams{Window: c.WatchInterval, Cooldown: d.Cooldown, MaxEvents: d.MaxEvents}
		for i := range e.Rules {
			r := &e.Rules[i]
			m := r.SMBMatch()
			var cmds smb.CommandSet
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
	if s := smbc.Sockconn; s != nil {
		p.Sockconn = &SockconnParams{
			AcceptableCount: s.AcceptableCount,
			Window:          c.WatchInterval,
			Cooldown:        d.Cooldown,
			MaxEvents:       d.MaxEvents,
		}
	}
	return p
}
