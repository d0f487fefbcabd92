package captureargs

import (
	"slices"
	"strings"
	"testing"
)

func TestCheckAccepts(t *testing.T) {
	for tool, list := range map[string][][]string{
		Tcpdump: {
			{"-s", "65536", "-B", "10240", "-C", "2", "-W", "100"}, // AODv2's example
			{"-nnC", "2", "-W100", "-i", "eth0", "host", "10.0.0.1"},
			{"-C", "2", "-W", "3", "--time-stamp-precision", "nano", "--interface=lo", "--", "-w", "is", "a", "filter"},
			{"-C", "2", "-W", "3", "--snap", "96"}, // a unique prefix, with its value
		},
		TraceCmd: {
			{"-e", "nfs", "-e", "nfs4", "-e", "sunrpc", "-b", "1024"}, // AODv2's example
			{"-e", "cifs", "--module", "cifs", "-f", "common_pid != 0", "-v", "-e", "cifs:smb3_enter"},
		},
	} {
		for _, args := range list {
			if _, probs := Check(tool, args); len(probs) != 0 {
				t.Errorf("%s %q: %v", tool, args, probs)
			}
			if err := Validate(tool, args); err != nil {
				t.Errorf("%s %q: %v", tool, args, err)
			}
		}
	}
}

func TestCheckRefuses(t *testing.T) {
	for _, tc := range []struct {
		tool string
		args []string
		arg  int
		want string
	}{
		{Tcpdump, []string{"-C", "2"}, -1, "missing required option -W (-C (file size) and -W (file count)"},
		{Tcpdump, []string{"-W", "2", "-G", "60"}, 2, "reserved option -G: rotating by time"},
		{Tcpdump, []string{"-W", "2", "-G", "60"}, -1, "missing required option -C"},
		{Tcpdump, []string{"-C", "2", "-W", "2", "-w", "/tmp/x"}, 4, "reserved option -w: aod chooses where captures are written"},
		{Tcpdump, []string{"-C", "2", "-W", "2", "-nw", "/tmp/x"}, 4, "reserved option -w"},
		{Tcpdump, []string{"-C", "2", "-W", "2", "--write-file=/tmp/x"}, 4, "reserved option --write-file (-w)"},
		{Tcpdump, []string{"-C", "2", "-W", "2", "-z", "/bin/sh"}, 4, "runs a command"},
		{Tcpdump, []string{"-C", "2", "-W", "2", "-r", "x.pcap"}, 4, "reads saved captures"},
		{Tcpdump, []string{"-C", "2", "-W", "2", "-Z", "nobody"}, 4, "reserved option -Z"},
		{Tcpdump, []string{"-C", "2", "-W", "2", "--relinq=nobody"}, 4, "reserved option --relinq (-Z)"},
		{Tcpdump, []string{"-C", "2", "-W", "2", "-c", "100"}, 4, "exit after that many packets"},
		{Tcpdump, []string{"-C", "2", "-W", "2", "--list-interfaces"}, 4, "prints information and exits"},
		{Tcpdump, []string{"-C", "2", "-W"}, 2, "option -W needs a value, and nothing follows it"},
		{Tcpdump, []string{"-C", "2", "-W", "2", "--interface"}, 4, "option --interface needs a value"},
		{Tcpdump, []string{"-C", "2", "-W", "2", "--li", "x"}, 4, "option --li is ambiguous: it could be --linktype or --list-data-link-types or --list-interfaces or --list-time-stamp-types"},
		{TraceCmd, []string{"-b", "1024"}, -1, "missing required option -e (-e names the events to trace)"},
		{TraceCmd, []string{"-e", "nfs", "-o", "/tmp/x.dat"}, 2, "reserved option -o: aod chooses where captures are written"},
		{TraceCmd, []string{"-e", "nfs", "-B", "other"}, 2, "ftrace instance of its own"},
		{TraceCmd, []string{"-e", "nfs", "-s", "100"}, 2, "trace-cmd start does not do"},
		{TraceCmd, []string{"-e", "nfs", "ls", "-o", "x"}, 2, "not an option: the arguments follow `trace-cmd start -B aod_<protocol>`"},
		{TraceCmd, []string{"-e", "nfs", "--", "ls"}, 3, "not an option"},
		{"strace", []string{"-f"}, -1, `unknown capture tool "strace"; allowed: tcpdump, trace-cmd`},
	} {
		_, probs := Check(tc.tool, tc.args)
		i := slices.IndexFunc(probs, func(p Problem) bool { return p.Arg == tc.arg && strings.Contains(p.Message, tc.want) })
		if i < 0 {
			t.Errorf("%s %q: problems %v, want one at %d with %q", tc.tool, tc.args, probs, tc.arg, tc.want)
		}
		if err := Validate(tc.tool, tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q: Validate says %v", tc.tool, tc.args, err)
		}
	}
	// getopt stops at trace-cmd's first operand: what follows is the command, not
	// options to judge one by one.
	if _, probs := Check(TraceCmd, []string{"-e", "nfs", "ls", "-o", "x"}); len(probs) != 1 {
		t.Errorf("problems after the first operand: %v", probs)
	}
}

func TestValidateNamesTheArgument(t *testing.T) {
	err := Validate(Tcpdump, []string{"-C", "2", "-W", "2", "-w", "/tmp/x"})
	if err == nil || err.Error() != `tcpdump argument 5 ("-w"): reserved option -w: aod chooses where captures are written` {
		t.Fatalf("%v", err)
	}
}

func TestParsed(t *testing.T) {
	p, probs := Check(Tcpdump, []string{"-nnilo", "-C2", "--snapshot-length", "96", "-W", "3", "host", "srv", "--nano"})
	if len(probs) != 0 {
		t.Fatal(probs)
	}
	for _, o := range []string{"-n", "-i", "-C", "-s", "-W", "--nano"} {
		if !p.Options[o] {
			t.Errorf("option %s not seen in %v", o, p.Options)
		}
	}
	// Option values are neither options nor operands: -ilo's "lo", 96, 3.
	if !slices.Equal(p.Operands, []string{"host", "srv"}) || p.Options["-l"] || p.Options["-o"] {
		t.Errorf("operands %q options %v", p.Operands, p.Options)
	}
}

func TestAllowed(t *testing.T) {
	for tool, want := range map[string]string{
		Tcpdump:  "a list of tcpdump arguments with -C and -W, and without -w or --write-file or the other reserved options (-r, -V, -z, -Z, -G, -c, -D, -L, -J, -d, -h, --version)",
		TraceCmd: "a list of trace-cmd start -B aod_<protocol> arguments with -e, and without -o or the other reserved options (-B, -s, -N, -t, -V, -A, --proxy, -h)",
	} {
		if got := Allowed(tool); got != want {
			t.Errorf("%s:\n got %s\nwant %s", tool, got, want)
		}
	}
	if !Known(Tcpdump) || !Known(TraceCmd) || Known("dmesg") {
		t.Error("Known")
	}
}

func FuzzCheckCaptureArgs(f *testing.F) {
	f.Add("tcpdump", "-s 65536 -B 10240 -C 2 -W 100")
	f.Add("tcpdump", "-nnC 2 -W100 --relinq=x -- host srv")
	f.Add("trace-cmd", "-e nfs -b 1024 --module cifs")
	f.Fuzz(func(t *testing.T, tool, line string) {
		args := strings.Fields(line)
		p, probs := Check(tool, args)
		for _, pr := range probs {
			if pr.Arg < -1 || pr.Arg >= len(args) || pr.Message == "" {
				t.Fatalf("problem %+v for %q", pr, args)
			}
		}
		if !Known(tool) {
			if len(probs) != 1 {
				t.Fatalf("unknown tool %q: %v", tool, probs)
			}
			return
		}
		// Operands are arguments, in order.
		j := 0
		for _, a := range args {
			if j < len(p.Operands) && a == p.Operands[j] {
				j++
			}
		}
		if j != len(p.Operands) {
			t.Fatalf("operands %q are not a subsequence of %q", p.Operands, args)
		}
		// Cutting out what is at fault, one problem at a time, always shortens the
		// list and ends with problems that have no cut.
		for rest := args; ; {
			_, probs := Check(tool, rest)
			i := slices.IndexFunc(probs, func(p Problem) bool { return p.Cut != nil })
			if i < 0 {
				break
			}
			c := *probs[i].Cut
			if c.From < 0 || c.From > probs[i].Arg || c.To <= probs[i].Arg || c.To > len(rest) {
				t.Fatalf("cut %+v of %q for problem %+v", c, rest, probs[i])
			}
			next := c.Apply(rest)
			if len(strings.Join(next, " ")) >= len(strings.Join(rest, " ")) || len(ApplyTo(c, rest)) != len(next) {
				t.Fatalf("cut %+v of %q gives %q", c, rest, next)
			}
			rest = next
		}
		if len(probs) > 0 {
			return
		}
		// An accepted list has the required options and no reserved one.
		for _, r := range specs[tool].required {
			if !p.Options[r] {
				t.Fatalf("%q accepted without %s", args, r)
			}
		}
		for _, r := range specs[tool].reserved {
			for _, o := range r.options {
				if p.Options[o] {
					t.Fatalf("%q accepted with reserved %s", args, o)
				}
			}
		}
	})
}

// TestCutsTakeOutWhatIsAtFault: each problem's Cut removes its option with its
// value, keeping the rest of a cluster, or the operands; the options that choose the
// output and the missing required options have none.
func TestCutsTakeOutWhatIsAtFault(t *testing.T) {
	for _, c := range []struct {
		tool string
		args []string
		want []string // args after the first problem's cut; nil: it has no cut
	}{
		{Tcpdump, []string{"-C", "2", "-W", "3", "-G", "60"}, []string{"-C", "2", "-W", "3"}},
		{Tcpdump, []string{"-C", "2", "-nG", "60", "-W", "3"}, []string{"-C", "2", "-n", "-W", "3"}},
		{Tcpdump, []string{"-C", "2", "-nG60", "-W", "3"}, []string{"-C", "2", "-n", "-W", "3"}},
		{Tcpdump, []string{"-C", "2", "-Dn", "-W", "3"}, []string{"-C", "2", "-n", "-W", "3"}},
		{Tcpdump, []string{"-C", "2", "-W", "3", "--relinquish", "nobody", "host", "a"}, []string{"-C", "2", "-W", "3", "host", "a"}},
		{Tcpdump, []string{"-C", "2", "-W", "3", "--relinquish=nobody"}, []string{"-C", "2", "-W", "3"}},
		{Tcpdump, []string{"-C", "2", "-W", "3", "--li"}, []string{"-C", "2", "-W", "3"}},
		{Tcpdump, []string{"-C", "2", "-W", "3", "-s"}, []string{"-C", "2", "-W", "3"}},
		{TraceCmd, []string{"-e", "nfs", "sleep", "10"}, []string{"-e", "nfs"}},
		{TraceCmd, []string{"-e", "nfs", "--", "sleep"}, []string{"-e", "nfs"}},
		{Tcpdump, []string{"-C", "2", "-W", "3", "-nw", "x"}, nil},
		{TraceCmd, []string{"-e", "nfs", "-o", "x"}, nil},
		{Tcpdump, []string{"-C", "2"}, nil},
	} {
		_, probs := Check(c.tool, c.args)
		if len(probs) == 0 {
			t.Errorf("%s %q: no problem", c.tool, c.args)
			continue
		}
		cut := probs[0].Cut
		switch {
		case c.want == nil && cut != nil:
			t.Errorf("%s %q: %q has cut %+v, want none", c.tool, c.args, probs[0].Message, *cut)
		case c.want != nil && cut == nil:
			t.Errorf("%s %q: %q has no cut", c.tool, c.args, probs[0].Message)
		case c.want != nil && !slices.Equal(cut.Apply(c.args), c.want):
			t.Errorf("%s %q: cut gives %q, want %q", c.tool, c.args, cut.Apply(c.args), c.want)
		}
	}
}
