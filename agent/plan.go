package agent

import (
	"log/slog"
	"strings"

	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/smb"
)

// logPlan says what the configuration asks aod to watch, and once, plainly, each
// section aod cannot act on yet.
func logPlan(cfg *config.Config, log *slog.Logger) {
	window := cfg.WatchInterval
	smbP := &cfg.Anomalies.SMB
	if l := smbP.Latency; l != nil {
		log.Info("watching SMB latency",
			"mode", l.Mode, "commands", l.Commands(smb.Table).Len(),
			"default_threshold", l.DefaultThreshold, "overrides", len(l.TrackCommands),
			"acceptable_count", l.AcceptableCount, "window", window,
			"ceiling", cfg.Detection.LatencyCeiling, "actions", actionNames(l.Actions))
	}
	if e := smbP.Error; e != nil {
		for _, r := range e.Rules {
			m := r.Match(smb.Table)
			log.Info("watching SMB errors", "rule", r.Name, "acceptable_count", r.AcceptableCount,
				"window", window, "commands", orAny(commandNames(m.Commands)), "errors", orAny(r.TrackErrors),
				"actions", actionNames(e.Actions))
		}
	}
	if s := smbP.Sockconn; s != nil {
		log.Info("watching SMB connections", "acceptable_count", s.AcceptableCount, "window", window,
			"actions", actionNames(s.Actions))
	}
	for _, p := range []struct {
		name string
		p    *config.Protocol
	}{{config.ProtocolNFS, &cfg.Anomalies.NFS}, {config.ProtocolIO, &cfg.Anomalies.IO}} {
		for _, typ := range p.p.Types() {
			log.Warn("this version of aod cannot watch this yet; skipping it", "section", "anomalies."+p.name+"."+typ)
		}
	}
	if smbP.Types() == nil {
		log.Warn("no SMB anomaly configured: nothing will be detected")
	}
}

func actionNames(actions []config.Action) string {
	names := make([]string, len(actions))
	for i, a := range actions {
		names[i] = a.Name
	}
	return strings.Join(names, ",")
}

func commandNames(codes []uint16) []string {
	var names []string
	for _, c := range codes {
		names = append(names, smb.Command(c).String())
	}
	return names
}

func orAny(names []string) string {
	if len(names) == 0 {
		return "any"
	}
	return strings.Join(names, ",")
}
