package config

import (
	"fmt"
	"iter"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/errno"
	fileio "github.com/linuxdiag/aod/internal/io"
	"github.com/linuxdiag/aod/internal/nfs"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/smb"
)

var (
	protocols    = []string{ProtocolSMB, ProtocolNFS, ProtocolIO}
	anomalyTypes = []string{anomaly.TypeLatency, anomaly.TypeError, anomaly.TypeSockconn}

	// tools names the one tool AODv2 runs for each protocol and anomaly type; a
	// combination missing here does not exist.
	tools = map[string]map[string]string{
		ProtocolSMB: {anomaly.TypeLatency: "smbslower", anomaly.TypeError: "smbiosnoop", anomaly.TypeSockconn: "ss"},
		ProtocolNFS: {anomaly.TypeLatency: "nfsslower", anomaly.TypeError: "nfsiosnoop", anomaly.TypeSockconn: "ss"},
		ProtocolIO:  {anomaly.TypeLatency: "ioslower", anomaly.TypeError: "iosnoop"},
	}

	latencyKeys  = []string{"tool", "mode", "acceptable_count", "default_threshold_ms", "track_commands", "exclude_commands", "actions"}
	errorKeys    = []string{"tool", "acceptable_count", "track_commands", "track_errors", "rules", "actions"}
	ruleKeys     = []string{"name", "acceptable_count", "track_commands", "track_errors"}
	sockconnKeys = []string{"tool", "acceptable_count", "actions"}
	trackKeys    = []string{"command", "threshold"}
	modes        = []string{string(ModeAll), string(ModeTrackOnly), string(ModeExcludeOnly)}

	ruleNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
)

// section identifies the anomaly being decoded.
type section struct {
	proto, typ string
	legacy     bool // AODv2 2025 form: a type: key, actions as a list
}

func (s section) String() string { return s.proto + " " + s.typ }

// table returns the name table of the section's protocol (smb, nfs and io each have
// one: config imports their packages, which register them).
func (s section) table() *proto.Table {
	p, _ := proto.ParseProtocol(s.proto)
	return proto.TableOf(p)
}

// typesOf lists the anomaly types a protocol has, in the canonical order.
func typesOf(proto string) []string {
	var t []string
	for _, typ := range anomalyTypes {
		if tools[proto][typ] != "" {
			t = append(t, typ)
		}
	}
	return t
}

func (a *Anomalies) protocol(name string) *Protocol {
	switch name {
	case ProtocolSMB:
		return &a.SMB
	case ProtocolNFS:
		return &a.NFS
	}
	return &a.IO
}

func (d *decoder) anomalies(f field) Anomalies {
	var a Anomalies
	m := d.keys(f.key, f.val, f.path, keySet{allowed: protocols, fold: foldName})
	for _, proto := range protocols {
		pf, ok := m.get(proto)
		if !ok {
			continue
		}
		p := a.protocol(proto)
		pm := d.keys(pf.key, pf.val, pf.path, keySet{allowed: typesOf(proto), fold: foldName})
		for _, typ := range typesOf(proto) {
			if tf, ok := pm.get(typ); ok {
				d.anomaly(section{proto: proto, typ: typ}, tf, p)
			}
		}
	}
	return a
}

// foldName is how AODv2 reads protocol and anomaly type names (`SMB:`, `Latency:`).
func foldName(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// anomaly decodes one anomaly section into its slot of p.
func (d *decoder) anomaly(sec section, f field, p *Protocol) {
	switch sec.typ {
	case anomaly.TypeLatency:
		p.Latency = d.latency(sec, f)
	case anomaly.TypeError:
		p.Error = d.errorAnomaly(sec, f)
	case anomaly.TypeSockconn:
		p.Sockconn = d.sockconn(sec, f)
	}
}

// tool checks the tool: key, which AODv2 requires to name the section's one tool.
func (d *decoder) tool(sec section, m *fields) string {
	want := tools[sec.proto][sec.typ]
	if f, ok := m.get("tool"); ok {
		if s, ok := d.str(f, want); ok && s != want {
			d.badHint(f.val, f.path, "unknown tool for "+sec.String(), suggest(s, seqOf([]string{want})), want)
		}
	}
	return want
}

func (d *decoder) latency(sec section, f field) *LatencyAnomaly {
	keys := latencyKeys
	if sec.legacy {
		keys = append([]string{"type"}, latencyKeys...)
	}
	m := d.anomalyKeys(sec, f, keys)
	errs := len(d.errs)
	l := &LatencyAnomaly{Tool: d.tool(sec, m), Mode: ModeAll, DefaultThreshold: DefaultLatencyThreshold}
	if g, ok := m.get("mode"); ok {
		l.Mode = d.mode(sec, g, l.Mode)
	}
	l.AcceptableCount = d.acceptableCount(sec, m)
	d.setDuration(m, "default_threshold_ms", thresholdSpec, &l.DefaultThreshold)

	// AODv2 ignored, with a warning, the list the mode does not use, without
	// checking it.
	track, hasTrack := m.get("track_commands")
	exclude, hasExclude := m.get("exclude_commands")
	if hasTrack && l.Mode == ModeExcludeOnly && !isEmptyList(track.val) {
		d.warnf(track.key, track.path, "ignored in mode excludeonly, which watches every command not excluded at default_threshold_ms, as AODv2 did: got %s", describe(track.val))
		hasTrack = false
	}
	if hasExclude && l.Mode == ModeTrackOnly && !isEmptyList(exclude.val) {
		d.warnf(exclude.key, exclude.path, "ignored in mode trackonly, which watches only track_commands, as AODv2 did: got %s", describe(exclude.val))
		hasExclude = false
	}
	tracked := map[string]int{}   // command -> index in l.TrackCommands
	trackedAt := map[string]int{} // command -> line
	if hasTrack {
		const allowed = "a list of {command: NAME, threshold: MILLISECONDS}"
		for _, item := range d.list(track, allowed) {
			im := d.mapping(item.val, item.val, item.path, trackKeys)
			// The threshold is checked even when the command is bad, so that one run
			// reports every problem of the entry.
			ct := CommandThreshold{Threshold: l.DefaultThreshold}
			d.setDuration(im, "threshold", thresholdSpec, &ct.Threshold)
			cf, ok := d.required(im, "command", d.commandsAllowed(sec.table()))
			if !ok {
				continue
			}
			name, ok := d.command(sec, cf)
			if !ok {
				continue
			}
			ct.Command = name
			if i, dup := tracked[name]; dup {
				d.warnf(cf.val, cf.path, "%s is already in track_commands on line %d: this later entry's threshold (%v) is used, as AODv2 did", name, trackedAt[name], ct.Threshold)
				l.TrackCommands[i] = ct
				continue
			}
			tracked[name], trackedAt[name] = len(l.TrackCommands), cf.val.Line
			l.TrackCommands = append(l.TrackCommands, ct)
		}
	}
	if hasExclude {
		l.ExcludeCommands = d.names(exclude, "command", func(item field) (string, bool) {
			name, ok := d.command(sec, item)
			if line, both := trackedAt[name]; ok && both {
				d.errorf(item.val, item.path, "%s is also in track_commands (line %d): got it in both; allowed: a command in track_commands or in exclude_commands, not both", name, line)
				return "", false
			}
			return name, ok
		})
	}
	if f, ok := m.get("actions"); ok {
		l.Actions = d.actions(sec, f)
	}
	if len(d.errs) == errs {
		d.checkWatchesSomething(sec, f, l)
	}
	return l
}

// isEmptyList reports whether n is null or an empty sequence.
func isEmptyList(n *yaml.Node) bool {
	v := deref(n)
	return isNull(v) || v.Kind == yaml.SequenceNode && len(v.Content) == 0
}

// acceptableCount decodes an anomaly's acceptable_count: required in the 2025 form,
// which AODv2 failed without it; 1 when absent in the 2026 form, as in AODv2.
func (d *decoder) acceptableCount(sec section, m *fields) int {
	if !sec.legacy {
		if _, ok := m.get("acceptable_count"); !ok {
			return 1
		}
	}
	if g, ok := d.required(m, "acceptable_count", countSpec.allowed()); ok {
		n, _ := d.aodv2Count(g)
		return n
	}
	return 0
}

// mode decodes a mode. The 2026 form checks it as AODv2 did. AODv2's 2025 form did
// not: it compared the value with trackonly and excludeonly exactly and read
// anything else as all, so there a near miss takes the mode it names and anything
// else all, each with a warning.
func (d *decoder) mode(sec section, f field, def Mode) Mode {
	if !sec.legacy {
		if s, ok := d.enum(f, modes...); ok {
			return Mode(s)
		}
		return def
	}
	s, ok := d.str(f, strings.Join(modes, ", "))
	if !ok || slices.Contains(modes, s) {
		if ok {
			return Mode(s)
		}
		return def
	}
	if m := suggest(foldName(s), seqOf(modes)); m != "" {
		d.warnf(f.val, f.path, "not a mode AODv2 knew: got %s, which AODv2 read as all; aod reads it as %s", describe(f.val), m)
		return Mode(m)
	}
	d.warnf(f.val, f.path, "not a mode AODv2 knew: got %s, which AODv2 read as all; aod does too; allowed: %s", describe(f.val), strings.Join(modes, ", "))
	return ModeAll
}

// aodv2AnomalyKeys are the keys an anomaly section has in some AODv2 version. AODv2
// read the keys of the section's type and ignored the others.
var aodv2AnomalyKeys = []string{"type", "tool", "mode", "acceptable_count", "default_threshold_ms", "track_commands", "exclude_commands", "track_errors", "track_codes", "exclude_codes", "actions"}

// anomalyKeys decodes an anomaly section taking keys; the other keys of
// aodv2AnomalyKeys are ignored with a warning.
func (d *decoder) anomalyKeys(sec section, f field, keys []string) *fields {
	var ignored []string
	for _, k := range aodv2AnomalyKeys {
		if !slices.Contains(keys, k) {
			ignored = append(ignored, k)
		}
	}
	form := "2026"
	if sec.legacy {
		form = "2025"
	}
	return d.keys(f.key, f.val, f.path, keySet{allowed: keys, ignored: ignored,
		ignoredWhy: fmt.Sprintf("AODv2 (%s form) did not use this key in a %s anomaly, and aod does not either", form, sec.typ)})
}

// checkWatchesSomething reports a latency anomaly whose settings leave no command to
// watch.
func (d *decoder) checkWatchesSomething(sec section, f field, l *LatencyAnomaly) {
	const allowed = "settings that watch at least one command"
	t := sec.table()
	switch {
	case l.Mode == ModeTrackOnly && len(l.TrackCommands) == 0:
		d.errorf(f.key, f.path, "watches no command: got mode trackonly with no track_commands; allowed: %s", allowed)
	case l.Commands(t).Len() == 0:
		d.errorf(f.key, f.path, "watches no command: got mode %s with all %d %ss in exclude_commands; allowed: %s", l.Mode, t.CommandSet().Len(), t.CommandNoun, allowed)
	}
}

func (d *decoder) errorAnomaly(sec section, f field) *ErrorAnomaly {
	m := d.anomalyKeys(sec, f, errorKeys)
	e := &ErrorAnomaly{Tool: d.tool(sec, m)}
	rules, hasRules := m.get("rules")
	var legacyKeys []field
	for _, k := range []string{"acceptable_count", "track_commands", "track_errors"} {
		if g, ok := m.get(k); ok {
			legacyKeys = append(legacyKeys, g)
		}
	}
	switch {
	case hasRules:
		for _, g := range legacyKeys {
			d.errorf(g.key, g.path, "the legacy single-rule form cannot be combined with rules (line %d): got both; allowed: either rules, or acceptable_count/track_commands/track_errors without rules", rules.key.Line)
		}
		e.Rules = d.rules(sec, rules)
	case len(legacyKeys) > 0:
		e.Legacy = true
		r := ErrorRule{Name: LegacyRuleName, AcceptableCount: d.acceptableCount(sec, m)}
		d.ruleAxes(sec, f, m, &r)
		e.Rules = []ErrorRule{r}
	default:
		d.errorf(f.key, f.path, "no rule: got neither rules nor acceptable_count; allowed: rules: [{name, acceptable_count, track_commands, track_errors}], or acceptable_count with track_commands and/or track_errors")
	}
	if g, ok := m.get("actions"); ok {
		e.Actions = d.actions(sec, g)
	}
	return e
}

func (d *decoder) rules(sec section, f field) []ErrorRule {
	const allowed = "a list of {name, acceptable_count, track_commands, track_errors}"
	items := d.list(f, allowed)
	if len(items) == 0 && (isNull(f.val) || deref(f.val).Kind == yaml.SequenceNode) {
		d.errorf(f.key, f.path, "no rules: got an empty list; allowed: %s, with at least one rule", allowed)
		return nil
	}
	var rules []ErrorRule
	names := map[string]int{}
	for _, item := range items {
		m := d.mapping(item.val, item.val, item.path, ruleKeys)
		var r ErrorRule
		if nf, ok := d.required(m, "name", "a unique rule name of letters, digits, _ . -"); ok {
			if s, ok := d.str(nf, "a rule name"); ok {
				switch line, dup := names[s]; {
				case !ruleNameRE.MatchString(s):
					d.bad(nf.val, nf.path, "invalid rule name", "letters, digits, _ . - (starting with a letter or digit)")
				case dup:
					d.errorf(nf.val, nf.path, "duplicate rule name %q (first on line %d); allowed: a name used by one rule only", s, line)
				default:
					names[s] = nf.val.Line
				}
				r.Name = s
			}
		}
		if g, ok := d.required(m, "acceptable_count", countSpec.allowed()); ok {
			r.AcceptableCount, _ = d.integer(g, countSpec)
		}
		d.ruleAxes(sec, item, m, &r)
		rules = append(rules, r)
	}
	return rules
}

// ruleAxes decodes the lists a named rule and the legacy form share; at is the rule
// (or section) reported when the rule has no axis.
func (d *decoder) ruleAxes(sec section, at field, m *fields, r *ErrorRule) {
	if g, ok := m.get("track_commands"); ok {
		r.TrackCommands = d.names(g, "command", func(f field) (string, bool) { return d.command(sec, f) })
	}
	if g, ok := m.get("track_errors"); ok {
		r.TrackErrors = d.names(g, "error", func(f field) (string, bool) { return d.errorName(sec, f) })
	}
	if len(r.TrackCommands) == 0 && len(r.TrackErrors) == 0 {
		d.reportNoAxis(at, m, "track_commands", "track_errors")
	}
}

// reportNoAxis reports a rule that filters on nothing. A list whose names all failed
// to decode already has its own errors, so only truly empty axes are reported.
func (d *decoder) reportNoAxis(at field, m *fields, commands, errors string) {
	for _, k := range []string{commands, errors} {
		if g, ok := m.get(k); ok && !isNull(g.val) && deref(g.val).Kind == yaml.SequenceNode && len(deref(g.val).Content) > 0 {
			return
		}
	}
	d.errorf(at.key, at.path, "no axis: got neither %s nor %s, which would count every failure, including the end-of-file and no-more-files statuses of normal traffic; allowed: at least one of %s, %s", commands, errors, commands, errors)
}

// names decodes a list of names, canonicalised by one. A name listed again (also
// through an alias) warns, as it did in AODv2, and is kept once.
func (d *decoder) names(f field, what string, one func(field) (string, bool)) []string {
	var out []string
	seen := map[string]int{}
	for _, item := range d.list(f, "a list of "+what+" names") {
		name, ok := one(item)
		if !ok {
			continue
		}
		if line, dup := seen[name]; dup {
			d.warnf(item.val, item.path, "%s is already listed on line %d: got it twice; it counts once, as in AODv2", name, line)
			continue
		}
		seen[name] = item.val.Line
		out = append(out, name)
	}
	return out
}

func (d *decoder) commandsAllowed(t *proto.Table) string {
	var names []string
	for _, n := range t.AllCommands() {
		names = append(names, n)
	}
	allowed := strings.Join(names, ", ")
	if t.CommandPrefix != "" {
		allowed += fmt.Sprintf(" (the %q prefix may be left out)", t.CommandPrefix)
	}
	return allowed
}

// command decodes a command name, checked against the protocol's table and made
// canonical.
func (d *decoder) command(sec section, f field) (string, bool) {
	t := sec.table()
	allowed := d.commandsAllowed(t)
	s, ok := d.str(f, allowed)
	if !ok {
		return "", false
	}
	code, ok := t.LookupCommand(s)
	if !ok {
		hint := suggest(strings.TrimPrefix(strings.ToUpper(s), t.CommandPrefix), bareCommands(t))
		if hint != "" {
			hint = t.CommandPrefix + hint
		}
		d.badHint(f.val, f.path, "unknown "+t.CommandNoun, hint, allowed)
		return "", false
	}
	return t.CommandName(code), true
}

// bareCommands yields t's command names without their optional prefix.
func bareCommands(t *proto.Table) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, n := range t.AllCommands() {
			if !yield(strings.TrimPrefix(n, t.CommandPrefix)) {
				return
			}
		}
	}
}

const smbErrorsAllowed = "an NTSTATUS name (such as STATUS_IO_TIMEOUT; the full MS-ERREF table) or an errno name the kernel maps statuses to (such as EIO, EACCES)"

const nfsErrorsAllowed = "an NFS status name (NFS4ERR_*, or NFS3ERR_* for the NFSv3-only ones, such as NFS4ERR_STALE) or an errno name for RPCs that failed without one (such as ETIMEDOUT, EIO)"

// errorName decodes an error name: for SMB an NTSTATUS or errno name, for NFS an NFS
// status or errno name, for io an errno name, made canonical.
func (d *decoder) errorName(sec section, f field) (string, bool) {
	switch sec.proto {
	case ProtocolNFS:
		return d.nfsErrorName(f)
	case ProtocolIO:
		return d.ioErrorName(f)
	}
	s, ok := d.str(f, smbErrorsAllowed)
	if !ok {
		return "", false
	}
	if name, ok := smb.CanonicalStatus(s); ok {
		if code, _ := smb.LookupStatus(s); code == 0 {
			d.bad(f.val, f.path, "not a failure status (its value is 0)", smbErrorsAllowed)
			return "", false
		}
		return name, true
	}
	if e, ok := errno.Lookup(s); ok {
		return errno.Name(e), true
	}
	d.badHint(f.val, f.path, "unknown error name", suggest(s, concat(smb.StatusNames(), errno.Names())), smbErrorsAllowed)
	return "", false
}

// nfsErrorName decodes an NFS error name, as AODv2's nfsiosnoop table (NFS4ERR_*) and
// aod's errno names for RPC-level failures name them; an NFSv3 alias is made the
// NFSv4 name of the same status.
func (d *decoder) nfsErrorName(f field) (string, bool) {
	s, ok := d.str(f, nfsErrorsAllowed)
	if !ok {
		return "", false
	}
	if code, ok := nfs.LookupStatus(s); ok {
		return nfs.StatusName(code), true
	}
	d.badHint(f.val, f.path, "unknown error name", suggest(s, concat(nfs.StatusNames(), errno.Names())), nfsErrorsAllowed)
	return "", false
}

const ioErrorsAllowed = "an errno name, as the failed system call returned it (such as EIO, ESTALE, ENOENT)"

// ioErrorName decodes an io error name: an errno name (aliases such as EWOULDBLOCK are
// made the canonical name of the same value).
func (d *decoder) ioErrorName(f field) (string, bool) {
	s, ok := d.str(f, ioErrorsAllowed)
	if !ok {
		return "", false
	}
	if code, ok := fileio.LookupStatus(s); ok {
		return fileio.StatusName(code), true
	}
	d.badHint(f.val, f.path, "unknown error name", suggest(s, fileio.StatusNames()), ioErrorsAllowed)
	return "", false
}

func concat(seqs ...iter.Seq[string]) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, seq := range seqs {
			for n := range seq {
				if !yield(n) {
					return
				}
			}
		}
	}
}

func (d *decoder) sockconn(sec section, f field) *SockconnAnomaly {
	m := d.anomalyKeys(sec, f, sockconnKeys)
	// AODv2 kept acceptable_count here but fired on any change of the connections;
	// aod counts losses against it (documented, and written by config show, so no
	// warning).
	s := &SockconnAnomaly{Tool: d.tool(sec, m), AcceptableCount: d.acceptableCount(sec, m)}
	if g, ok := m.get("actions"); ok {
		s.Actions = d.actions(sec, g)
	}
	return s
}
