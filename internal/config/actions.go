package config

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/linuxdiag/aod/internal/captureargs"
)

// quickActions take no value; captures take an argument list.
var quickActions = []string{ActionDmesg, ActionJournalctl, ActionDebugData, ActionStats, ActionMounts, ActionSMBInfo, ActionSyslogs}

var actionNames = append(slices.Clone(quickActions), ActionTcpdump, ActionTraceCmd)

// captureUse is one capture in the file, for the checks across anomalies.
type captureUse struct {
	proto, tool, path string
	args              []string
	at                *yaml.Node
}

// actions decodes an anomaly's actions: a mapping in the 2026 form, a list of names
// in the 2025 one. Empty actions are nil.
func (d *decoder) actions(sec section, f field) []Action {
	if sec.legacy {
		return d.actionList(f)
	}
	const allowed = "a mapping of action names: quick actions with no value (dmesg:), captures with an argument list (tcpdump: [ARGS])"
	if v := deref(f.val); v != nil && v.Kind == yaml.SequenceNode {
		d.errorf(f.val, f.path, "wrong type: got a list, the AODv2 2025 form; allowed: %s", allowed)
		return nil
	}
	m := d.mapping(f.key, f.val, f.path, actionNames)
	var out []Action
	for _, name := range m.order {
		g := m.byName[name]
		if !captureargs.Known(name) {
			if !isNull(g.val) && !isEmptyCollection(g.val) {
				d.bad(g.val, g.path, "a quick action takes no value", fmt.Sprintf("nothing: write %q", name+":"))
				continue
			}
			out = append(out, Action{Name: name})
			continue
		}
		if args, ok := d.captureArgs(name, g); ok {
			out = append(out, Action{Name: name, Args: args})
			d.captures = append(d.captures, captureUse{proto: sec.proto, tool: name, path: g.path, args: args, at: g.key})
		}
	}
	return out
}

// actionList decodes the 2025 list of quick action names. AODv2 skipped, with a
// warning, a name it had no action for; so does aod.
func (d *decoder) actionList(f field) []Action {
	allowed := strings.Join(quickActions, ", ")
	var out []Action
	seen := map[string]int{}
	for _, item := range d.list(f, "a list of action names: "+allowed) {
		s, ok := d.str(item, allowed)
		if !ok {
			continue
		}
		switch line, dup := seen[s]; {
		case captureargs.Known(s):
			d.warnf(item.val, item.path, "skipped, as AODv2 did: %s needs arguments, which the 2025 list form cannot give; the 2026 form, printed by `aod config migrate`, takes them as %s: [ARGS]", s, s)
		case !slices.Contains(quickActions, s):
			hint := ""
			if h := suggest(s, seqOf(quickActions)); h != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", h)
			}
			d.warnf(item.val, item.path, "unknown action, skipped as AODv2 did: got %s%s; known: %s", describe(item.val), hint, allowed)
		case dup:
			d.warnf(item.val, item.path, "%s is already listed on line %d: it runs once", s, line)
		default:
			seen[s] = item.val.Line
			out = append(out, Action{Name: s})
		}
	}
	return out
}

// isEmptyCollection reports whether n is an empty list or mapping, which AODv2 took
// as a quick action's "no value".
func isEmptyCollection(n *yaml.Node) bool {
	v := deref(n)
	return v != nil && (v.Kind == yaml.SequenceNode || v.Kind == yaml.MappingNode) && len(v.Content) == 0
}

// captureArgs decodes a capture's argument list and checks it with the rules the
// capture itself runs by.
func (d *decoder) captureArgs(tool string, f field) ([]string, bool) {
	allowed := captureargs.Allowed(tool)
	v := deref(f.val)
	if v == nil || v.Kind != yaml.SequenceNode {
		d.wrongType(f.val, f.path, allowed)
		return nil, false
	}
	errs := len(d.errs)
	args := make([]string, 0, len(v.Content))
	for i, item := range v.Content {
		it := deref(item)
		if it == nil || it.Kind != yaml.ScalarNode || isNull(it) {
			d.wrongType(item, fmt.Sprintf("%s[%d]", f.path, i), "a command-line argument")
			continue
		}
		args = append(args, it.Value)
	}
	if len(d.errs) > errs {
		return nil, false
	}
	// AODv2 refused only a missing required option and the options that choose
	// where captures are written, and passed the rest to the tool. aod leaves out,
	// with a warning, each argument it cannot run a capture with; each cut shortens
	// the list, so this ends.
	at := make([]int, len(args)) // each argument's index in the file's list
	for i := range at {
		at[i] = i
	}
	for {
		_, probs := captureargs.Check(tool, args)
		i := slices.IndexFunc(probs, func(p captureargs.Problem) bool { return p.Cut != nil })
		if i < 0 {
			for _, p := range probs {
				if p.Arg < 0 {
					d.errorf(f.key, f.path, "%s: got %s; allowed: %s", p.Message, fmtList(args), allowed)
					continue
				}
				d.bad(v.Content[at[p.Arg]], fmt.Sprintf("%s[%d]", f.path, at[p.Arg]), p.Message, allowed)
			}
			return args, len(probs) == 0
		}
		p := probs[i]
		pos, cut := at[p.Arg], fmtList(args[p.Cut.From:p.Cut.To])
		args, at = p.Cut.Apply(args), captureargs.ApplyTo(*p.Cut, at)
		d.warnf(v.Content[pos], fmt.Sprintf("%s[%d]", f.path, pos), "%s: got %s, which AODv2 passed to %s; aod leaves it out and runs %s", p.Message, cut, tool, fmtList(args))
	}
}

// checkCaptures enforces what one running capture per tool implies: a tool serves
// one protocol, with the same arguments everywhere it appears.
func (d *decoder) checkCaptures() {
	first := map[string]captureUse{}
	for _, c := range d.captures {
		f, ok := first[c.tool]
		if !ok {
			first[c.tool] = c
			continue
		}
		switch {
		case f.proto != c.proto:
			d.errorf(c.at, c.path, "%s is already bound to protocol %s (%s, line %d): got it under %s too; allowed: each capture tool in one protocol only",
				c.tool, f.proto, f.path, f.at.Line, c.proto)
		case !slices.Equal(f.args, c.args):
			d.errorf(c.at, c.path, "%s arguments differ from those of %s (line %d): got %s, there %s; allowed: the same arguments for every %s of protocol %s",
				c.tool, f.path, f.at.Line, fmtList(c.args), fmtList(f.args), c.tool, c.proto)
		}
	}
}

// fmtList renders an argument list for messages.
func fmtList(s []string) string { return "[" + strings.Join(s, ", ") + "]" }
