package config

import (
	"fmt"
	"iter"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/agnivade/levenshtein"
	"gopkg.in/yaml.v3"
)

// decoder walks a YAML node tree against aod's schema, collecting every issue
// instead of stopping at the first.
type decoder struct {
	file     string
	errs     []Issue
	warns    []Issue
	captures []captureUse // every capture action, for the checks across anomalies
}

// field is one key of a mapping with its value and the key path of the value.
type field struct {
	key, val *yaml.Node
	path     string
}

// fields is a decoded mapping: only known keys, each once.
type fields struct {
	at     *yaml.Node // where "missing key" errors point: the section's key, or the mapping
	path   string
	byName map[string]field
	order  []string // keys in file order
	// invalid is set when the value was not a mapping at all; its keys are then not
	// reported missing, the wrong type says it all.
	invalid bool
}

func (f *fields) get(name string) (field, bool) {
	v, ok := f.byName[name]
	return v, ok
}

func join(path, key string) string {
	if path == "" {
		return printable(key)
	}
	return path + "." + printable(key)
}

// deref follows aliases (*anchor) to the node they name. The schema bounds how deep
// the walk goes, so a recursive anchor cannot loop.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 64; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

func (d *decoder) issue(list *[]Issue, n *yaml.Node, path, msg string) {
	is := Issue{File: d.file, Path: path, Message: msg}
	if n != nil {
		is.Line, is.Column = n.Line, n.Column
	}
	*list = append(*list, is)
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.issue(&d.errs, n, path, fmt.Sprintf(format, args...))
}

func (d *decoder) warnf(n *yaml.Node, path, format string, args ...any) {
	d.issue(&d.warns, n, path, fmt.Sprintf(format, args...))
}

// bad reports a value that has the right type but is not allowed.
func (d *decoder) bad(n *yaml.Node, path, problem, allowed string) {
	d.errorf(n, path, "%s: got %s; allowed: %s", problem, describe(n), allowed)
}

// badHint is bad with a did-you-mean suggestion when one is close enough.
func (d *decoder) badHint(n *yaml.Node, path, problem, hint, allowed string) {
	if hint == "" {
		d.bad(n, path, problem, allowed)
		return
	}
	d.errorf(n, path, "%s: got %s (did you mean %q?); allowed: %s", problem, describe(n), hint, allowed)
}

func (d *decoder) wrongType(n *yaml.Node, path, allowed string) {
	d.errorf(n, path, "wrong type: got %s; allowed: %s", kindOf(n), allowed)
}

// describe renders a value for a message: strings quoted, other scalars as written.
func describe(n *yaml.Node) string {
	n = deref(n)
	switch {
	case n == nil || n.Kind == 0:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!null":
		return "null (no value)"
	case "!!int", "!!float", "!!bool":
		return clip(n.Value)
	}
	return strconv.Quote(clip(n.Value))
}

// kindOf names a value's type for wrong-type messages.
func kindOf(n *yaml.Node) string {
	v := deref(n)
	if v == nil || v.Kind != yaml.ScalarNode {
		return describe(n)
	}
	switch v.ShortTag() {
	case "!!null":
		return describe(n)
	case "!!str":
		return "a string (" + describe(n) + ")"
	case "!!int":
		return "an integer (" + describe(n) + ")"
	case "!!float":
		return "a number (" + describe(n) + ")"
	case "!!bool":
		return "a boolean (" + describe(n) + ")"
	}
	return fmt.Sprintf("a %s (%s)", strings.TrimPrefix(v.ShortTag(), "!!"), describe(n))
}

// clip keeps messages readable when a value is huge.
func clip(s string) string {
	const limit = 80
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// suggest returns the candidate closest to got, if it is close enough to be a typo:
// at most a third of its letters (and at least one) differ, case aside.
func suggest(got string, candidates iter.Seq[string]) string {
	if len(got) > maxSuggestLen {
		return "" // no name is this long
	}
	limit := max(1, len(got)/3)
	best, bestDist := "", limit+1
	lg := strings.ToLower(got)
	for c := range candidates {
		// The length difference bounds the distance from below: skip the candidates
		// that cannot be close, which is nearly all of the 1,700 NTSTATUS names.
		if diff := len(c) - len(got); diff > limit || -diff > limit {
			continue
		}
		// Ties go to the smaller name, so the message is the same on every run.
		if dist := levenshtein.ComputeDistance(lg, strings.ToLower(c)); dist < bestDist || dist == bestDist && c < best {
			best, bestDist = c, dist
		}
	}
	return best
}

// maxSuggestLen bounds the strings suggest considers: the longest NTSTATUS name is
// well under it.
const maxSuggestLen = 96

func seqOf(s []string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, v := range s {
			if !yield(v) {
				return
			}
		}
	}
}

// mapping decodes a mapping node, reporting a wrong type, keys that are not names
// and unknown keys (with a suggestion). A key given twice warns and its last value
// wins, in the place of its first: AODv2's YAML reader (PyYAML) builds a Python dict
// the same way. A null or absent value is an empty mapping. at is where errors about
// the whole section point (its key). A nil allowed accepts any key name.
func (d *decoder) mapping(at, n *yaml.Node, path string, allowed []string) *fields {
	return d.keys(at, n, path, keySet{allowed: allowed})
}

// keySet says which keys a mapping takes.
type keySet struct {
	allowed []string // nil: any name
	// fold, when set, rewrites each key name first (the names AODv2 lower-cases).
	fold func(string) string
	// ignored are keys AODv2 accepted in this mapping without using them: each warns
	// with ignoredWhy and is left out.
	ignored    []string
	ignoredWhy string
}

// keys is mapping with the key names ks gives.
func (d *decoder) keys(at, n *yaml.Node, path string, ks keySet) *fields {
	allowed := ks.allowed
	if at == nil {
		at = n
	}
	f := &fields{at: at, path: path, byName: map[string]field{}}
	v := deref(n)
	if isNull(v) {
		return f
	}
	if v.Kind != yaml.MappingNode {
		d.wrongType(n, path, "a mapping with the keys "+strings.Join(allowed, ", "))
		f.invalid = true
		return f
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		kd := deref(k)
		if kd.Kind != yaml.ScalarNode {
			d.bad(k, path, "a key must be a name", strings.Join(allowed, ", "))
			continue
		}
		name := kd.Value
		if ks.fold != nil {
			name = ks.fold(name)
		}
		p := join(path, name)
		if slices.Contains(ks.ignored, name) {
			d.warnf(k, p, "ignored: %s", ks.ignoredWhy)
			continue
		}
		if allowed != nil && !slices.Contains(allowed, name) {
			d.badHint(k, p, "unknown key", suggest(name, seqOf(allowed)), strings.Join(allowed, ", "))
			continue
		}
		if line, dup := seen[name]; dup {
			d.warnf(k, p, "duplicate key: %q is already set on line %d; this later value is used, as AODv2 did (its YAML reader keeps the last), and the earlier one is ignored", name, line)
		} else {
			f.order = append(f.order, name)
		}
		seen[name] = k.Line
		f.byName[name] = field{key: k, val: val, path: p}
	}
	return f
}

// list decodes a sequence; a null value is an empty list.
func (d *decoder) list(f field, allowed string) []field {
	v := deref(f.val)
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		d.wrongType(f.val, f.path, allowed)
		return nil
	}
	items := make([]field, len(v.Content))
	for i, item := range v.Content {
		items[i] = field{key: item, val: item, path: fmt.Sprintf("%s[%d]", f.path, i)}
	}
	return items
}

// str decodes a string scalar.
func (d *decoder) str(f field, allowed string) (string, bool) {
	v := deref(f.val)
	if v == nil || v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
		d.wrongType(f.val, f.path, allowed)
		return "", false
	}
	return v.Value, true
}

// enum decodes a string that must be one of options.
func (d *decoder) enum(f field, options ...string) (string, bool) {
	allowed := strings.Join(options, ", ")
	s, ok := d.str(f, allowed)
	if !ok {
		return "", false
	}
	if !slices.Contains(options, s) {
		d.badHint(f.val, f.path, "invalid value", suggest(s, seqOf(options)), allowed)
		return "", false
	}
	return s, true
}

// yaml11Bools are the plain words AODv2's YAML 1.1 reader (PyYAML) took as booleans
// besides true and false; YAML 1.2 reads them as strings.
var yaml11Bools = map[string]bool{
	"yes": true, "Yes": true, "YES": true, "on": true, "On": true, "ON": true,
	"no": false, "No": false, "NO": false, "off": false, "Off": false, "OFF": false,
}

func (d *decoder) boolean(f field) (bool, bool) {
	v := deref(f.val)
	if v != nil && v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" && v.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
		if b, ok := yaml11Bools[v.Value]; ok {
			return b, true
		}
	}
	if v == nil || v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" {
		d.wrongType(f.val, f.path, "true or false")
		return false, false
	}
	var b bool
	if err := v.Decode(&b); err != nil {
		d.wrongType(f.val, f.path, "true or false")
		return false, false
	}
	return b, true
}

// numSpec is the range of a numeric setting.
type numSpec struct {
	min, max float64
	minOpen  bool // min itself is not allowed
	integer  bool
	unit     string // "seconds", "milliseconds", ...; "" for a plain count
	// aodv2 marks a setting AODv2 took at any size: above max it warns and becomes
	// max instead of failing.
	aodv2 bool
}

func (s numSpec) allowed() string {
	kind := "a number"
	if s.integer {
		kind = "an integer"
	}
	if s.unit != "" {
		kind += " of " + s.unit
	}
	lo := ">="
	if s.minOpen {
		lo = ">"
	}
	var bounds []string
	if !math.IsInf(s.min, -1) {
		bounds = append(bounds, lo+" "+fmtNum(s.min))
	}
	if !s.aodv2 { // an AODv2 setting above max loads, as max
		bounds = append(bounds, "<= "+fmtNum(s.max))
	}
	if len(bounds) == 0 {
		return kind
	}
	return kind + " " + strings.Join(bounds, " and ")
}

func fmtNum(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// number decodes a number in spec's range. A quoted number is a string, not a
// number: YAML quoting is how a user says "this is text".
func (d *decoder) number(f field, spec numSpec) (float64, bool) {
	v := deref(f.val)
	if v == nil || v.Kind != yaml.ScalarNode {
		d.wrongType(f.val, f.path, spec.allowed())
		return 0, false
	}
	switch v.ShortTag() {
	case "!!int":
	case "!!float":
		if spec.integer {
			d.bad(f.val, f.path, "not an integer", spec.allowed())
			return 0, false
		}
	default:
		d.wrongType(f.val, f.path, spec.allowed())
		return 0, false
	}
	var x float64
	if err := v.Decode(&x); err != nil {
		d.wrongType(f.val, f.path, spec.allowed())
		return 0, false
	}
	if math.IsNaN(x) || math.IsInf(x, 0) {
		d.bad(f.val, f.path, "not a finite number", spec.allowed())
		return 0, false
	}
	if x > spec.max && spec.aodv2 {
		d.warnf(f.val, f.path, "above aod's limit, which AODv2 did not have: got %s; aod uses %s", describe(f.val), fmtNum(spec.max))
		return spec.max, true
	}
	if x < spec.min || (spec.minOpen && x == spec.min) || x > spec.max {
		d.bad(f.val, f.path, "out of range", spec.allowed())
		return 0, false
	}
	return x, true
}

func (d *decoder) integer(f field, spec numSpec) (int, bool) {
	spec.integer = true
	x, ok := d.number(f, spec)
	return int(x), ok
}

// quantity is a number in a file unit stored in a finer one: seconds kept as
// time.Duration in milliseconds, MiB kept in bytes, ...
type quantity struct {
	numSpec
	unit, res float64 // one file unit and the stored resolution, in the stored base unit
}

var (
	seconds = quantity{numSpec: numSpec{unit: "seconds"}, unit: float64(time.Second), res: float64(time.Millisecond)}
	millis  = quantity{numSpec: numSpec{unit: "milliseconds"}, unit: float64(time.Millisecond), res: float64(time.Microsecond)}
	days    = quantity{numSpec: numSpec{unit: "days"}, unit: float64(24 * time.Hour), res: float64(time.Millisecond)}
	mebi    = quantity{numSpec: numSpec{unit: "MiB"}, unit: 1 << 20, res: 1}
)

// in returns q with a range, in file units.
func (q quantity) in(lo, hi float64, loOpen bool) quantity {
	q.min, q.max, q.minOpen = lo, hi, loOpen
	return q
}

// fromAODv2 marks q as an AODv2 setting (numSpec.aodv2).
func (q quantity) fromAODv2() quantity {
	q.aodv2 = true
	return q
}

// decode parses a value of q, rounded to q's resolution, in the stored base unit.
func (d *decoder) quantity(f field, q quantity) (int64, bool) {
	x, ok := d.number(f, q.numSpec)
	if !ok {
		return 0, false
	}
	return int64(math.Round(x*q.unit/q.res)) * int64(q.res), true
}

// format renders a stored value in file units; decode(format(v)) == v.
func (q quantity) format(v int64) string {
	return fmtNum(float64(v/int64(q.res)) / (q.unit / q.res))
}

func (d *decoder) duration(f field, q quantity) (time.Duration, bool) {
	v, ok := d.quantity(f, q)
	return time.Duration(v), ok
}
