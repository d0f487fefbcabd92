package config

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/errno"
)

// The AODv2 2025 form: `watcher: actions: [...]` lists default actions and
// `guardian: anomalies: <name>: {type: Latency|Error, tool: ..., ...}` lists the
// anomalies, with actions as lists of names. It is translated to the 2026 form.

var (
	watcherKeys     = []string{"actions"}
	guardianKeys    = []string{"anomalies"}
	legacyErrorKeys = []string{"type", "tool", "mode", "acceptable_count", "track_codes", "exclude_codes", "track_commands", "actions"}
	legacyTypes     = map[string]string{"latency": anomaly.TypeLatency, "error": anomaly.TypeError}
)

const legacyTypesAllowed = "Latency, Error"

// legacyKey returns the first of the 2025 form's watcher: and guardian: keys in the
// file, or a zero field when there is neither.
func (d *decoder) legacyKey(top *fields) field {
	var first field
	for _, k := range []string{"watcher", "guardian"} {
		if f, ok := top.get(k); ok && (first.key == nil || f.key.Line < first.key.Line) {
			first = f
		}
	}
	return first
}

// legacy translates watcher:/guardian: into anomalies and issues the one warning
// that says how to migrate.
func (d *decoder) legacy(top *fields, at field) Anomalies {
	how := fmt.Sprintf("AODv2 2025 form (watcher:/guardian:), translated to the 2026 form: run `aod config migrate %s` to print it", d.file)
	if _, ok := top.get("audit"); ok {
		how += "; the migrated file drops audit:, as aod records every action of a bundle in its manifest.json"
	}
	d.warnf(at.key, at.path, "%s", how)

	var defaults []Action
	if f, ok := top.get("watcher"); ok {
		wm := d.mapping(f.key, f.val, f.path, watcherKeys)
		if g, ok := wm.get("actions"); ok {
			defaults = d.actionList(g)
		}
	}
	var a Anomalies
	g, ok := top.get("guardian")
	if !ok {
		return a
	}
	gm := d.mapping(g.key, g.val, g.path, guardianKeys)
	af, ok := gm.get("anomalies")
	if !ok {
		return a
	}
	am := d.mapping(af.key, af.val, af.path, nil)
	// AODv2 2025 kept one handler and one action list per anomaly type, the last
	// in the file: an earlier entry of the same protocol and type did nothing.
	secs := map[string]section{}
	lastOf := map[section]string{}
	for _, name := range am.order {
		if sec, ok := d.legacySection(am.byName[name]); ok {
			secs[name], lastOf[sec] = sec, name
		}
	}
	for _, name := range am.order {
		f := am.byName[name]
		sec, ok := secs[name]
		if !ok {
			continue
		}
		if last := lastOf[sec]; last != name {
			d.warnf(f.key, f.path, "ignored: a later %s anomaly, %q on line %d, replaces it, as in AODv2, which kept the last of each type", sec, last, am.byName[last].key.Line)
			continue
		}
		p := a.protocol(sec.proto)
		if sec.typ == anomaly.TypeError {
			p.Error = d.legacyError(sec, f)
		} else {
			d.anomaly(sec, f, p)
		}
		if !hasKey(f.val, "actions") && len(defaults) > 0 {
			d.warnf(f.key, f.path, "no actions: AODv2 ran none for this anomaly (watcher.actions only listed those available); aod runs watcher.actions: %s", strings.Join(namesOf(defaults), ", "))
			switch sec.typ {
			case anomaly.TypeLatency:
				p.Latency.Actions = slices.Clone(defaults)
			case anomaly.TypeError:
				p.Error.Actions = slices.Clone(defaults)
			}
		}
	}
	return a
}

// namesOf lists the names of actions.
func namesOf(actions []Action) []string {
	names := make([]string, len(actions))
	for i, a := range actions {
		names[i] = a.Name
	}
	return names
}

// legacySection reads an entry's type: and tool: to find which protocol and anomaly
// type it is, before its other keys can be checked.
func (d *decoder) legacySection(f field) (section, bool) {
	tf, ok := lookupKey(f.val, "type")
	if !ok {
		if deref(f.val) == nil || deref(f.val).Kind != yaml.MappingNode {
			d.wrongType(f.val, f.path, "a mapping with type: "+legacyTypesAllowed)
		} else {
			d.errorf(f.key, join(f.path, "type"), "missing required key; allowed: %s", legacyTypesAllowed)
		}
		return section{}, false
	}
	tf.path = join(f.path, "type")
	s, ok := d.str(tf, legacyTypesAllowed)
	if !ok {
		return section{}, false
	}
	typ, ok := legacyTypes[foldName(s)]
	if !ok {
		d.badHint(tf.val, tf.path, "unknown anomaly type", suggest(s, seqOf([]string{"Latency", "Error"})), legacyTypesAllowed)
		return section{}, false
	}
	sec := section{proto: ProtocolSMB, typ: typ, legacy: true}
	toolF, ok := lookupKey(f.val, "tool")
	if !ok {
		return sec, true
	}
	toolF.path = join(f.path, "tool")
	var known []string
	for _, proto := range protocols {
		if t := tools[proto][typ]; t != "" {
			known = append(known, t)
		}
	}
	allowed := strings.Join(known, ", ")
	tool, ok := d.str(toolF, allowed)
	if !ok {
		return section{}, false
	}
	for _, proto := range protocols {
		if tools[proto][typ] == tool {
			sec.proto = proto
			return sec, true
		}
	}
	// AODv2 2025 did not check the tool: it started none for a name it did not know
	// (logging "No command builder defined"), so the anomaly never fired.
	hint := ""
	if h := suggest(tool, seqOf(known)); h != "" {
		hint = fmt.Sprintf(" (did you mean %q?)", h)
	}
	d.warnf(toolF.val, toolF.path, "unknown tool for a %s anomaly: got %s%s; AODv2 started no tool for it, so the anomaly never fired, and aod skips it; known: %s", s, describe(toolF.val), hint, allowed)
	return section{}, false
}

// lookupKey finds key in a mapping node without checking the rest of it; of a key
// given twice it returns the last, the one mapping keeps.
func lookupKey(n *yaml.Node, key string) (f field, ok bool) {
	v := deref(n)
	if v == nil || v.Kind != yaml.MappingNode {
		return field{}, false
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		if k := deref(v.Content[i]); k.Kind == yaml.ScalarNode && k.Value == key {
			f, ok = field{key: v.Content[i], val: v.Content[i+1]}, true
		}
	}
	return f, ok
}

func hasKey(n *yaml.Node, key string) bool {
	_, ok := lookupKey(n, key)
	return ok
}

// legacyError translates a 2025 error anomaly into the single rule of the legacy
// 2026 form, with the meaning AODv2 gave it: mode trackonly counts the errnos of
// track_codes; mode all (AODv2's default, and what it made of any other mode) and
// excludeonly count every errno but those of exclude_codes.
func (d *decoder) legacyError(sec section, f field) *ErrorAnomaly {
	m := d.anomalyKeys(sec, f, legacyErrorKeys)
	errs := len(d.errs)
	e := &ErrorAnomaly{Tool: d.tool(sec, m), Legacy: true}
	r := ErrorRule{Name: LegacyRuleName, AcceptableCount: d.acceptableCount(sec, m)}
	track, hasTrack := m.get("track_codes")
	exclude, hasExclude := m.get("exclude_codes")
	mode := ModeAll
	if g, ok := m.get("mode"); ok {
		mode = d.mode(sec, g, mode)
	} else if hasTrack && !isEmptyList(track.val) {
		// A file that lists the codes to track means trackonly: AODv2 counted every
		// error instead.
		d.warnf(track.key, track.path, "AODv2 ignored track_codes without a mode, as its default mode all counts every error; aod reads mode trackonly and counts these errors only")
		mode = ModeTrackOnly
	}
	if hasTrack && mode != ModeTrackOnly && !isEmptyList(track.val) {
		d.warnf(track.key, track.path, "ignored in mode %s, which counts every error not in exclude_codes, as AODv2 did: got %s", mode, describe(track.val))
	}
	if hasExclude && mode == ModeTrackOnly && !isEmptyList(exclude.val) {
		d.warnf(exclude.key, exclude.path, "ignored in mode trackonly, which counts the errors of track_codes only, as AODv2 did: got %s", describe(exclude.val))
		hasExclude = false
	}
	var tracked, excluded []string
	if hasTrack {
		tracked = d.names(track, "error", func(f field) (string, bool) { return d.errorName(sec, f) })
	}
	if hasExclude {
		excluded = d.names(exclude, "error", func(g field) (string, bool) {
			name, ok := d.errorName(sec, g)
			if ok && mode == ModeAll && slices.Contains(tracked, name) {
				d.errorf(g.val, g.path, "%s is also in track_codes: got it in both; allowed: an error in track_codes or in exclude_codes, not both", name)
				return "", false
			}
			return name, ok
		})
	}
	if mode == ModeTrackOnly {
		r.TrackErrors = tracked
	} else {
		r.TrackErrors = everyErrnoBut(excluded)
	}
	if g, ok := m.get("track_commands"); ok {
		r.TrackCommands = d.names(g, "command", func(f field) (string, bool) { return d.command(sec, f) })
		if len(r.TrackCommands) > 0 {
			d.warnf(g.key, g.path, "AODv2 did not use track_commands in a 2025 error anomaly and counted the errors of every command; aod counts the errors of these commands only")
		}
	}
	if len(d.errs) == errs && len(r.TrackCommands) == 0 && len(r.TrackErrors) == 0 {
		d.reportNoAxis(f, m, "track_commands", "track_codes")
	}
	if g, ok := m.get("actions"); ok {
		e.Actions = d.actionList(g)
	}
	e.Rules = []ErrorRule{r}
	return e
}

// everyErrnoBut lists the name of every errno value but those of excluded, in value
// order: AODv2 2025's "every error" was its list of every errno.
func everyErrnoBut(excluded []string) []string {
	var out []string
	for e := int32(1); e < maxErrno; e++ {
		if n := errno.Name(e); n != "" && !slices.Contains(excluded, n) {
			out = append(out, n)
		}
	}
	return out
}

// maxErrno bounds errno values (the kernel's MAX_ERRNO is 4095).
const maxErrno = 4096

// Migrate rewrites a file in the AODv2 2025 form into the 2026 form: watcher: and
// guardian: become anomalies: (where guardian: was), audit: is dropped, and every other
// section is kept as written, comments included. migrated is false, and out is data,
// when the file is already in the 2026 form. An invalid file gives an *Error.
func Migrate(name string, data []byte) (out []byte, migrated bool, err error) {
	cfg, _, err := Parse(name, data)
	if err != nil {
		return nil, false, err
	}
	root, _ := parseYAML(name, data) // Parse succeeded, so this does too
	top := deref(root)
	if top == nil || top.Kind != yaml.MappingNode || (!hasKey(top, "watcher") && !hasKey(top, "guardian")) {
		return data, false, nil
	}
	note := "Migrated from the AODv2 2025 form (watcher:/guardian:) by `aod config migrate`."
	if hasKey(top, "audit") {
		note += "\naudit: was dropped: aod records every action of a bundle in its manifest.json."
	}
	migratedTop := &yaml.Node{Kind: yaml.MappingNode, Tag: top.Tag, Style: top.Style}
	placed := false
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		switch deref(k).Value {
		case "watcher", "guardian":
			if !placed {
				key := strNode("anomalies")
				key.HeadComment = note
				migratedTop.Content = append(migratedTop.Content, key, renderAnomalies(&cfg.Anomalies))
				placed = true
			}
		case "audit":
		default:
			migratedTop.Content = append(migratedTop.Content, k, v)
		}
	}
	out, err = encode(migratedTop)
	return out, err == nil, err
}
