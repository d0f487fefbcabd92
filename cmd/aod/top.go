package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/control"
)

// top is `aod top`: one line per slow or failed SMB request or NFS RPC, like smbslower
// and nfsslower, and a
// per-command summary line every interval. It follows the running agent through its
// control socket; with no agent running it loads its own probes.
func (c *cli) top(ctx context.Context, args []string) int {
	fs := c.newFlags("top")
	sock := fs.String("control-socket", control.DefaultPath, "the running agent's control socket")
	file := fs.String("config", "", "thresholds when no agent runs (default: the embedded configs/aod.yaml)")
	every := fs.Duration("interval", 5*time.Second, "how often the per-command summary is printed")
	if code, done := c.parse(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return c.usageError("top takes no arguments, got %q", fs.Args())
	}
	if *every <= 0 {
		return c.usageError("--interval must be positive, got %v", *every)
	}
	v := newTopView(c.stdout, isTerminal(c.stdout))
	stop := v.summarizeEvery(*every)
	defer stop()
	err := control.Watch(ctx, *sock, v.hooks, v.add)
	if errors.Is(err, control.ErrNoAgent) {
		log, _ := c.logger(c.stderr)
		cfg, ok := loadLogged(*file, log)
		if !ok {
			return exitFailure
		}
		fmt.Fprintln(c.stderr, "aod: no agent running; attaching aod's own probes (Ctrl-C to stop)")
		err = watchProbes(ctx, cfg, log, v.hooks, v.add)
	}
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(c.stderr, "aod: top: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// topView renders records. Its methods are safe for concurrent use.
type topView struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	lines int
	stats map[string]*cmdStats
}

type cmdStats struct {
	n, failed  int
	sum, worst float64
}

func newTopView(w io.Writer, tty bool) *topView {
	return &topView{w: w, tty: tty, stats: map[string]*cmdStats{}}
}

// hooks prints, once, which hooks of aod's programs are attached and which are not, and
// why: on an older kernel some are missing, and what they measure is then not shown.
func (v *topView) hooks(hs []bpf.HookStatus) {
	v.mu.Lock()
	defer v.mu.Unlock()
	fmt.Fprintln(v.w, hooksLine(hs))
}

// hooksLine is top's first line: "probes: smb 6/6 attached; nfs 0/5 attached, not:
// rpc_stats_latency (programs not loaded: ...), ...".
func hooksLine(hs []bpf.HookStatus) string {
	if len(hs) == 0 {
		return "probes: none attached yet (waiting for the cifs and sunrpc modules)"
	}
	var parts []string
	for i := 0; i < len(hs); {
		proto := hs[i].Protocol
		var attached int
		var missing []string
		j := i
		for ; j < len(hs) && hs[j].Protocol == proto; j++ {
			if hs[j].Attached {
				attached++
			} else {
				missing = append(missing, fmt.Sprintf("%s (%s)", hs[j].Hook, hs[j].Reason))
			}
		}
		part := fmt.Sprintf("%s %d/%d attached", proto, attached, j-i)
		if len(missing) > 0 {
			part += ", not: " + strings.Join(missing, ", ")
		}
		parts = append(parts, part)
		i = j
	}
	return "probes: " + strings.Join(parts, "; ")
}

const topHeader = "TIME          PROCESS          PID      COMMAND               LAT(ms)  STATUS                          SERVER/SHARE OR EXPORT"

func (v *topView) add(r control.Record) {
	v.mu.Lock()
	defer v.mu.Unlock()
	// A terminal gets the header again every screenful; a pipe gets it once.
	if v.lines == 0 || (v.tty && v.lines%40 == 0) {
		fmt.Fprintln(v.w, v.bold(topHeader))
	}
	v.lines++
	if r.Dropped > 0 {
		fmt.Fprintf(v.w, "... %d records dropped (this view fell behind)\n", r.Dropped)
	}
	what := r.Command
	if what == "" {
		what = r.Kind
	}
	where := r.Where()
	status := r.Status
	if status == "" {
		status = "-"
	}
	fmt.Fprintf(v.w, "%-13s %-16.16s %-8d %-20.20s %9.3f  %-31.31s %s\n",
		r.Time.Local().Format("15:04:05.000"), r.Process, r.PID, what, r.Latency*1e3, status, where)
	key := what
	s := v.stats[key]
	if s == nil {
		s = &cmdStats{}
		v.stats[key] = s
	}
	s.n++
	s.sum += r.Latency
	s.worst = max(s.worst, r.Latency)
	if r.Status != "" {
		s.failed++
	}
}

// summary prints one line with each command's records since the last summary, and
// resets the counts. Nothing is printed for a quiet interval.
func (v *topView) summary() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.stats) == 0 {
		return
	}
	line := "-- " + time.Now().Format("15:04:05") + " "
	for _, k := range slices.Sorted(maps.Keys(v.stats)) {
		s := v.stats[k]
		line += fmt.Sprintf(" %s n=%d failed=%d avg=%.1fms max=%.1fms;", k, s.n, s.failed, s.sum/float64(s.n)*1e3, s.worst*1e3)
	}
	fmt.Fprintln(v.w, v.bold(line))
	clear(v.stats)
}

func (v *topView) summarizeEvery(d time.Duration) (stop func()) {
	t := time.NewTicker(d)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-t.C:
				v.summary()
			case <-done:
				return
			}
		}
	}()
	return func() { t.Stop(); close(done); v.summary() }
}

func (v *topView) bold(s string) string {
	if v.tty {
		return "\x1b[1m" + s + "\x1b[0m"
	}
	return s
}

// isTerminal reports whether w is a character device (a terminal), not a pipe or file.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
