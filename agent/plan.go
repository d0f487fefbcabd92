package agent

import (
	"log/slog"
	"strings"

	"github.com/linuxdiag/aod/internal/config"
	fileio "github.com/linuxdiag/aod/internal/io"
	"github.com/linuxdiag/aod/internal/nfs"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/smb"
)

// logPlan says what the configuration asks aod to watch, and once, plainly, each
// section aod cannot act on yet.
func logPlan(cfg *config.Config, log *slog.Logger) {
	watched := false
	for _, t := range []*proto.Table{smb.Table, nfs.Table, fileio.Table} {
		if logProtocolPlan(cfg, t, log) {
			watched = true
		}
	}
	if cfg.Anomalies.IO.Latency != nil {
		log.Warn("this version of aod cannot watch this yet; skipping it", "section", "anomalies."+config.ProtocolIO+".latency")
	}
	if !watched {
		log.Warn("no SMB, NFS or io anomaly configured: nothing will be detected")
	}
}

// logProtocolPlan logs what cfg watches of t's protocol, and whether it watches any.
func logProtocolPlan(cfg *config.Config, t *proto.Table, log *slog.Logger) bool {
	window := cfg.WatchInterval
	name := strings.ToUpper(t.Protocol.String())
	p := cfg.Anomalies.Of(t.Protocol)
	if l := p.Latency; l != nil && t.Protocol != proto.IO { // io latency: skipped, see logPlan
		log.Info("watching "+name+" latency",
			"mode", l.Mode, "commands", l.Commands(t).Len(),
			"default_threshold", l.DefaultThreshold, "overrides", len(l.TrackCommands),
			"acceptable_count", l.AcceptableCount, "window", window,
			"ceiling", cfg.Detection.LatencyCeiling, "actions", actionNames(l.Actions))
	}
	if e := p.Error; e != nil {
		if t.Protocol == proto.IO {
			log.Info("watching failed file operations", "file_systems", strings.Join(cfg.Detection.IOFileSystems, ","))
		}
		for _, r := range e.Rules {
			m := r.Match(t)
			log.Info("watching "+name+" errors", "rule", r.Name, "acceptable_count", r.AcceptableCount,
				"window", window, "commands", orAny(commandNames(t.Protocol, m.Commands)), "errors", orAny(r.TrackErrors),
				"actions", actionNames(e.Actions))
		}
	}
	if s := p.Sockconn; s != nil {
		log.Info("watching "+name+" connections", "acceptable_count", s.AcceptableCount, "window", window,
			"actions", actionNames(s.Actions))
	}
	return p.Types() != nil
}

func actionNames(actions []config.Action) string {
	names := make([]string, len(actions))
	for i, a := range actions {
		names[i] = a.Name
	}
	return strings.Join(names, ",")
}

func commandNames(p proto.Protocol, codes []uint16) []string {
	var names []string
	for _, c := range codes {
		names = append(names, proto.Command{Protocol: p, Code: c}.String())
	}
	return names
}

func orAny(names []string) string {
	if len(names) == 0 {
		return "any"
	}
	return strings.Join(names, ",")
}
