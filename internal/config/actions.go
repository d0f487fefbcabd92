package config

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// quickActions take no value; captures take an argument list.
var quickActions = []string{ActionDmesg, ActionJournalctl, ActionDebugData, ActionStats, ActionMounts, ActionSMBInfo, ActionSyslogs}

// captureSpec describes a capture tool's command line well enough to find options
// in it the way getopt would, including clustered short options (-nw FILE).
type captureSpec struct {
	valued     string   // short options that take a value
	reserved   []string // options aod sets itself: the output file
	required   []string // options that bound the capture's disk use or say what to trace
	why        string   // why the required ones are required
	noOperands bool     // positional arguments are refused
}

var captureSpecs = map[string]*captureSpec{
	// tcpdump's SHORTOPTS; -C/-W make its output a bounded ring of files.
	ActionTcpdump: {
		valued:   "BcCEFGijmMQrsTVwWyzZ",
		reserved: []string{"-w", "--write-file"},
		required: []string{"-C", "-W"},
		why:      "-C (file size) and -W (file count) bound the capture's disk use",
	},
	// `trace-cmd record` options; -e picks the events to trace.
	ActionTraceCmd: {
		valued:     "efApCoOsrVglnPNbRBmMH",
		reserved:   []string{"-o"},
		required:   []string{"-e"},
		why:        "-e names the events to trace",
		noOperands: true,
	},
}

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
		if captureSpecs[name] == nil {
			if !isNull(g.val) {
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

// actionList decodes the 2025 list of quick action names.
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
		case captureSpecs[s] != nil:
			d.bad(item.val, item.path, s+" needs arguments, which the 2025 list form cannot give", allowed+`; or the 2026 form, printed by "aod config migrate", where `+s+": takes an argument list")
		case !slices.Contains(quickActions, s):
			d.badHint(item.val, item.path, "unknown action", suggest(s, seqOf(quickActions)), allowed)
		case dup:
			d.errorf(item.val, item.path, "%s is already listed on line %d; allowed: each action once", s, line)
		default:
			seen[s] = item.val.Line
			out = append(out, Action{Name: s})
		}
	}
	return out
}

// captureArgs decodes and checks a capture's argument list.
func (d *decoder) captureArgs(tool string, f field) ([]string, bool) {
	spec := captureSpecs[tool]
	req := strings.Join(spec.required, " and ")
	allowed := fmt.Sprintf("a list of %s arguments with %s and without %s", tool, req, strings.Join(spec.reserved, " or "))
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

	seen := map[string]bool{}
	at := func(i int) (*yaml.Node, string) { return v.Content[i], fmt.Sprintf("%s[%d]", f.path, i) }
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			i = len(args)
		case strings.HasPrefix(a, "--"):
			name, _, _ := strings.Cut(a, "=")
			seen[name] = true
			if slices.Contains(spec.reserved, name) {
				n, p := at(i)
				d.bad(n, p, "reserved option: aod chooses where captures are written", allowed)
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				opt := "-" + a[j:j+1]
				seen[opt] = true
				if slices.Contains(spec.reserved, opt) {
					n, p := at(i)
					d.bad(n, p, "reserved option "+opt+": aod chooses where captures are written", allowed)
				}
				if strings.IndexByte(spec.valued, a[j]) < 0 {
					continue
				}
				if j == len(a)-1 { // the value is the next argument
					if i+1 == len(args) {
						n, p := at(i)
						d.bad(n, p, "option "+opt+" needs a value, and nothing follows it", allowed)
					}
					i++
				}
				break
			}
		case spec.noOperands:
			n, p := at(i)
			d.bad(n, p, "not an option: the arguments follow `"+tool+" record`", allowed)
		}
	}
	for _, r := range spec.required {
		if !seen[r] {
			d.errorf(f.key, f.path, "missing required option %s (%s): got %s; allowed: %s", r, spec.why, fmtList(args), allowed)
		}
	}
	return args, len(d.errs) == errs
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
