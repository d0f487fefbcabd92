// Package capture runs aod's long-running captures, tcpdump and trace-cmd, one per
// protocol with the user's arguments, and snapshots what they hold into a bundle when
// an anomaly fires. Both keep a bounded, rotating window of the recent past: tcpdump
// through its own file ring (-C/-W), trace-cmd through the kernel's ftrace ring buffer
// in an instance of its own. A capture that keeps failing is restarted with backoff
// and then disabled with a clear log, never retried in a tight loop.
package capture

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Tools, as the configuration names them.
const (
	ToolTcpdump  = "tcpdump"
	ToolTraceCmd = "trace-cmd"
)

// tcpdumpArgFlags are tcpdump's short options that take a value.
const tcpdumpArgFlags = "BcCEFGijmMQrsTVwWyzZ"

// tcpdumpLongArgFlags are its long options that take a value (as the next argument
// unless given as --name=value).
var tcpdumpLongArgFlags = []string{"--buffer-size", "--interface", "--snapshot-length", "--time-stamp-type",
	"--time-stamp-precision", "--relinquish-privileges", "--direction", "--fp-type"}

// Reserved options: aod sets them itself, or they would turn the capture into
// something else (reading a file, running a command on every rotation).
var (
	tcpdumpReserved  = map[string]string{"-w": "aod chooses the output file", "-r": "reads a file instead of capturing", "-V": "reads a list of files instead of capturing", "-z": "runs a command on every rotation", "-Z": "aod keeps the capture's privileges to write its directory", "--relinquish-privileges": "aod keeps the capture's privileges to write its directory"}
	traceCmdReserved = map[string]string{"-o": "aod chooses the output file", "-B": "aod uses an ftrace instance of its own"}
)

// tcpdumpOpts is what scanTcpdump finds in tcpdump arguments: which options are set,
// and the filter expression (the arguments that are neither options nor values).
type tcpdumpOpts struct {
	flags  map[string]bool // every option letter or long name seen, e.g. "-C", "--interface"
	filter []string
}

func scanTcpdump(args []string) (tcpdumpOpts, error) {
	o := tcpdumpOpts{flags: map[string]bool{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			o.filter = append(o.filter, args[i+1:]...)
			return o, nil
		case strings.HasPrefix(a, "--"):
			name, _, hasValue := strings.Cut(a, "=")
			o.flags[name] = true
			if !hasValue && slices.Contains(tcpdumpLongArgFlags, name) {
				if i+1 >= len(args) {
					return o, fmt.Errorf("tcpdump option %s needs a value", name)
				}
				i++
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			// A cluster like -nnvi: the first letter taking a value ends it, and the
			// value is the rest of the cluster or the next argument.
			for j := 1; j < len(a); j++ {
				o.flags["-"+a[j:j+1]] = true
				if strings.IndexByte(tcpdumpArgFlags, a[j]) < 0 {
					continue
				}
				if j == len(a)-1 {
					if i+1 >= len(args) {
						return o, fmt.Errorf("tcpdump option -%c needs a value", a[j])
					}
					i++
				}
				break
			}
		default:
			o.filter = append(o.filter, a)
		}
	}
	return o, nil
}

// ValidateArgs checks a capture's user arguments the way AODv2 did: options aod
// sets itself are refused, and the ones that bound the capture are required (tcpdump
// -W with -C or -G, so the ring of files has a fixed size; trace-cmd -e, so something
// is traced).
func ValidateArgs(tool string, args []string) error {
	switch tool {
	case ToolTcpdump:
		o, err := scanTcpdump(args)
		if err != nil {
			return err
		}
		if err := reserved(tool, o.flags, tcpdumpReserved); err != nil {
			return err
		}
		if !o.flags["-W"] || !(o.flags["-C"] || o.flags["-G"]) {
			return errors.New("tcpdump arguments must bound the capture with -W and -C (or -G), e.g. -C 2 -W 100")
		}
		return nil
	case ToolTraceCmd:
		flags := map[string]bool{}
		for _, a := range args {
			if strings.HasPrefix(a, "-") {
				flags[a] = true
			}
		}
		if err := reserved(tool, flags, traceCmdReserved); err != nil {
			return err
		}
		if !flags["-e"] {
			return errors.New("trace-cmd arguments must name the events to trace with -e, e.g. -e cifs")
		}
		return nil
	}
	return fmt.Errorf("unknown capture tool %q (want %s or %s)", tool, ToolTcpdump, ToolTraceCmd)
}

func reserved(tool string, flags map[string]bool, table map[string]string) error {
	for _, f := range slices.Sorted(maps.Keys(flags)) {
		if why, ok := table[f]; ok {
			return fmt.Errorf("%s option %s is reserved: %s", tool, f, why)
		}
	}
	return nil
}
