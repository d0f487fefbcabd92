// Package captureargs reads the argument lists of aod's captures, tcpdump and
// trace-cmd, the way the tools' getopt_long does (clustered short options, values
// attached or following, --name=value, unique prefixes of long names, "--"), and
// checks them against what aod needs. Options aod sets itself, or that would stop a
// capture from being a bounded ring running until aod stops it, are refused; the
// ones that bound it or say what to trace are required (AODv2's rules, tightened).
// Where AODv2 passed an argument to the tool, its problem says how to cut it out
// (Problem.Cut), which the configuration does with a warning.
// The configuration loader and the capture supervisor both use it, so an argument
// list the configuration accepts is one the capture runs.
package captureargs

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Capture tools, as the configuration names them.
const (
	Tcpdump  = "tcpdump"
	TraceCmd = "trace-cmd"
)

// long is a long option: the short option it stands for ("" when it has none) and
// whether it takes a value (as the next argument unless written --name=value).
type long struct {
	short  string
	valued bool
}

// reservation refuses options, for one reason.
type reservation struct {
	options []string // canonical names: the short option where there is one
	why     string
}

type spec struct {
	valued   string // short options that take a value
	longs    map[string]long
	reserved []reservation
	required []string
	why      string // why the required options are required
	// command is the command line the arguments are appended to; trace-cmd's
	// getopt stops at the first operand (its optstring starts with '+'), and
	// operands are refused there because aod runs no command under it.
	command    string
	noOperands bool
}

// outputWhy is AODv2's reason for its reserved options, which the configuration's
// messages have always given.
const outputWhy = "aod chooses where captures are written"

var specs = map[string]*spec{
	Tcpdump: {
		// tcpdump 4.99's SHORTOPTS and long options.
		valued: "BcCEFGijmMQrsTVwWyzZ",
		longs: map[string]long{
			"buffer-size": {"-B", true}, "interface": {"-i", true}, "time-stamp-type": {"-j", true},
			"direction": {"-Q", true}, "snapshot-length": {"-s", true}, "linktype": {"-y", true},
			"relinquish-privileges": {"-Z", true}, "time-stamp-precision": {"", true},
			"print-sampling": {"", true}, "skip": {"", true},
			"list-interfaces": {"-D", false}, "help": {"-h", false}, "monitor-mode": {"-I", false},
			"list-time-stamp-types": {"-J", false}, "dont-verify-checksums": {"-K", false},
			"list-data-link-types": {"-L", false}, "no-optimize": {"-O", false},
			"no-promiscuous-mode": {"-p", false}, "absolute-tcp-sequence-numbers": {"-S", false},
			"packet-buffered": {"-U", false}, "number": {"-#", false}, "immediate-mode": {"", false},
			"debug-filter-parser": {"", false}, "count": {"", false}, "fp-type": {"", false},
			"print": {"", false}, "version": {"", false}, "lengths": {"", false}, "micro": {"", false},
			"nano": {"", false},
			// Not tcpdump's: AODv2 reserved it, so it is refused with -w.
			"write-file": {"-w", true},
		},
		reserved: []reservation{
			{[]string{"-w"}, outputWhy},
			{[]string{"-r", "-V"}, "it reads saved captures instead of capturing"},
			{[]string{"-z"}, "it runs a command on every rotation"},
			{[]string{"-Z"}, "aod runs tcpdump as root so that it can write its private capture directory"},
			{[]string{"-G"}, "rotating by time breaks the ring: with -W tcpdump exits after that many files, with -C it ignores -W"},
			{[]string{"-c"}, "tcpdump would exit after that many packets; a capture runs until aod stops it"},
			{[]string{"-D", "-L", "-J", "-d", "-h", "--version"}, "it prints information and exits instead of capturing"},
		},
		required: []string{"-C", "-W"},
		why:      "-C (file size) and -W (file count) bound the capture's disk use",
		command:  "tcpdump",
	},
	TraceCmd: {
		// trace-cmd 3.x record's optstring, which start shares.
		valued: "efApCoOsrVglnPNbRBmMH",
		longs: map[string]long{
			"ts-offset": {"", true}, "max-graph-depth": {"", true}, "cmdlines-size": {"", true},
			"module": {"", true}, "tsync-interval": {"", true}, "name": {"", true}, "compression": {"", true},
			"file-version": {"", true}, "proxy": {"", true}, "temp": {"", true}, "subbuf-size": {"", true},
			"user": {"", true}, "verbose": {"", false}, "date": {"", false}, "func-stack": {"", false},
			"nosplice": {"", false}, "nofifos": {"", false}, "profile": {"", false}, "stderr": {"", false},
			"by-comm": {"", false}, "no-filter": {"", false}, "debug": {"", false}, "quiet": {"-q", false},
			"help": {"-h", false}, "fork": {"", false}, "tsc2nsec": {"", false}, "poll": {"", false},
			"daemonize": {"", false}, "proc-map": {"", false},
		},
		reserved: []reservation{
			{[]string{"-o"}, outputWhy},
			{[]string{"-B"}, "aod traces into an ftrace instance of its own (aod_<protocol>)"},
			{[]string{"-s", "-N", "-t", "-V", "-A", "--proxy"}, "it records to a file or another host, which trace-cmd start does not do"},
			{[]string{"-h"}, "it prints help and exits instead of tracing"},
		},
		required:   []string{"-e"},
		why:        "-e names the events to trace",
		command:    "trace-cmd start -B aod_<protocol>",
		noOperands: true,
	},
}

// Tools lists the capture tools.
func Tools() []string { return slices.Sorted(maps.Keys(specs)) }

// Known reports whether tool is a capture tool.
func Known(tool string) bool { return specs[tool] != nil }

// Problem is one thing wrong with an argument list.
type Problem struct {
	Arg     int // index of the argument at fault; -1 when the list lacks something
	Message string
	// Cut takes what is at fault out of the list, leaving arguments the tool runs
	// with. It is nil where AODv2 refused the list too: a missing required option,
	// or an option that chooses where captures are written.
	Cut *Cut
}

// Cut is the removal of an option (with its value) or of operands: args[From:To]
// become Keep, or nothing when Keep is "" (Keep is the rest of a cluster of short
// options).
type Cut struct {
	From, To int
	Keep     string
}

// Apply returns args with c made; args itself is not changed.
func (c Cut) Apply(args []string) []string {
	out := slices.Clone(args[:c.From])
	if c.Keep != "" {
		out = append(out, c.Keep)
	}
	return append(out, args[c.To:]...)
}

// ApplyTo is Apply for any list that runs parallel to the arguments (such as their
// positions in a file): the element of the kept rest of a cluster stays.
func ApplyTo[T any](c Cut, list []T) []T {
	out := slices.Clone(list[:c.From])
	if c.Keep != "" {
		out = append(out, list[c.From])
	}
	return append(out, list[c.To:]...)
}

// Parsed is what an argument list holds.
type Parsed struct {
	// Options are the options given, by their short name where they have one ("-i"
	// also for --interface), else by their long name ("--nano").
	Options map[string]bool
	// Operands are the arguments that are neither options nor their values:
	// tcpdump's filter expression.
	Operands []string
}

// Check reads args as tool's getopt would. Its problems come in argument order, then
// the required options that are missing.
func Check(tool string, args []string) (Parsed, []Problem) {
	p := Parsed{Options: map[string]bool{}}
	s := specs[tool]
	if s == nil {
		return p, []Problem{{-1, fmt.Sprintf("unknown capture tool %q; allowed: %s", tool, strings.Join(Tools(), ", ")), nil}}
	}
	var probs []Problem
	add := func(i int, cut *Cut, format string, a ...any) {
		probs = append(probs, Problem{i, fmt.Sprintf(format, a...), cut})
	}
	option := func(i int, cut *Cut, written, canonical string) {
		p.Options[canonical] = true
		for _, r := range s.reserved {
			if slices.Contains(r.options, canonical) {
				name := written
				if written != canonical {
					name += " (" + canonical + ")"
				}
				c := cut
				if r.why == outputWhy {
					c = nil
				}
				add(i, c, "reserved option %s: %s", name, r.why)
			}
		}
	}
	// through is where an option at i ends: past its value when it takes the next
	// argument.
	through := func(i int, takesNext bool) int {
		if takesNext && i+1 < len(args) {
			return i + 2
		}
		return i + 1
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if s.noOperands && i+1 < len(args) {
				add(i+1, &Cut{From: i, To: len(args)}, "not an option: the arguments follow `%s`, which runs no command", s.command)
			}
			p.Operands = append(p.Operands, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "--"):
			name, _, hasValue := strings.Cut(a[2:], "=")
			full, l, err := s.long(name)
			if err != nil {
				add(i, &Cut{From: i, To: i + 1}, "%v", err)
				continue
			}
			canonical := cmp.Or(l.short, "--"+full)
			takesNext := l.valued && !hasValue
			cut := &Cut{From: i, To: through(i, takesNext)}
			option(i, cut, "--"+name, canonical)
			if takesNext {
				if i+1 == len(args) {
					add(i, cut, "option --%s needs a value, and nothing follows it", full)
				}
				i++
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			// A cluster such as -nnw: the first option taking a value ends it, and the
			// value is the rest of the cluster or the next argument.
			for j := 1; j < len(a); j++ {
				opt := "-" + a[j:j+1]
				valued := strings.IndexByte(s.valued, a[j]) >= 0
				// Without the option the cluster keeps its other letters; a value
				// attached to it goes with it.
				cut := &Cut{From: i, To: through(i, valued && j == len(a)-1), Keep: a[:j] + a[j+1:]}
				if valued {
					cut.Keep = a[:j]
				}
				if cut.Keep == "-" {
					cut.Keep = ""
				}
				option(i, cut, opt, opt)
				if !valued {
					continue
				}
				if j == len(a)-1 {
					if i+1 == len(args) {
						add(i, cut, "option %s needs a value, and nothing follows it", opt)
					}
					i++
				}
				break
			}
		case s.noOperands:
			// getopt stops here and takes the rest for a command to run.
			add(i, &Cut{From: i, To: len(args)}, "not an option: the arguments follow `%s`, which runs no command", s.command)
			p.Operands = append(p.Operands, args[i:]...)
			i = len(args)
		default:
			p.Operands = append(p.Operands, a)
		}
	}
	for _, r := range s.required {
		if !p.Options[r] {
			add(-1, nil, "missing required option %s (%s)", r, s.why)
		}
	}
	return p, probs
}

// long resolves a long option name as getopt_long does: an exact name, or the one
// known name it is a prefix of. A name it does not know is passed through as a
// valueless option of its own; the tool itself will judge it.
func (s *spec) long(name string) (string, long, error) {
	if l, ok := s.longs[name]; ok {
		return name, l, nil
	}
	var matches []string
	for full := range s.longs {
		if name != "" && strings.HasPrefix(full, name) {
			matches = append(matches, full)
		}
	}
	switch len(matches) {
	case 0:
		return name, long{}, nil
	case 1:
		return matches[0], s.longs[matches[0]], nil
	}
	slices.Sort(matches)
	return "", long{}, fmt.Errorf("option --%s is ambiguous: it could be --%s", name, strings.Join(matches, " or --"))
}

// Validate is Check as one error, naming each argument at fault, for callers with no
// file position to give.
func Validate(tool string, args []string) error {
	_, probs := Check(tool, args)
	errs := make([]error, 0, len(probs))
	for _, p := range probs {
		if p.Arg < 0 {
			errs = append(errs, fmt.Errorf("%s arguments: %s", tool, p.Message))
		} else {
			errs = append(errs, fmt.Errorf("%s argument %d (%q): %s", tool, p.Arg+1, args[p.Arg], p.Message))
		}
	}
	return errors.Join(errs...)
}

// Allowed describes a valid argument list of tool, for messages.
func Allowed(tool string) string {
	s := specs[tool]
	if s == nil {
		return "a capture tool: " + strings.Join(Tools(), ", ")
	}
	var output, others []string
	for _, r := range s.reserved {
		if r.why == outputWhy {
			output = append(output, r.options...)
			for _, name := range slices.Sorted(maps.Keys(s.longs)) {
				if slices.Contains(r.options, s.longs[name].short) {
					output = append(output, "--"+name)
				}
			}
			continue
		}
		others = append(others, r.options...)
	}
	return fmt.Sprintf("a list of %s arguments with %s, and without %s or the other reserved options (%s)",
		s.command, strings.Join(s.required, " and "), strings.Join(output, " or "), strings.Join(others, ", "))
}
