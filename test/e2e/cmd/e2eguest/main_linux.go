package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/nfsproc"
	"github.com/linuxdiag/aod/test/e2e/internal/guestprobe"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "e2eguest:", err)
		os.Exit(1)
	}
}

const usage = "usage: e2eguest probe [-fallback auto|off|force] -ready FILE -out FILE | e2eguest scrape URL | e2eguest iofail missing|create|exists|nospc|stale MOUNT N OUT [SERVERDIR]"

var fallbackModes = map[string]bpf.FallbackMode{"auto": bpf.FallbackAuto, "off": bpf.FallbackOff, "force": bpf.FallbackForce}

func run(args []string) error {
	if len(args) == 2 && args[0] == "scrape" {
		return scrape(args[1], os.Stdout)
	}
	if (len(args) == 5 || len(args) == 6) && args[0] == "iofail" {
		n, err := strconv.Atoi(args[3])
		if err != nil || n <= 0 {
			return fmt.Errorf("iofail: count %q: want a positive number", args[3])
		}
		server := ""
		if len(args) == 6 {
			server = args[5]
		}
		return iofail(args[1], args[2], n, args[4], server)
	}
	if len(args) == 0 || args[0] != "probe" {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	ready := fs.String("ready", "", "file created once the programs are attached")
	out := fs.String("out", "", "file the snapshot is written to at SIGTERM")
	fallback := fs.String("fallback", "auto", "when to measure requests with the fallback programs: auto, off or force")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *ready == "" || *out == "" {
		return errors.New("probe needs -ready and -out")
	}
	mode, ok := fallbackModes[*fallback]
	if !ok {
		return fmt.Errorf("-fallback %q: want auto, off or force", *fallback)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return probe(ctx, bpf.Options{Fallback: mode}, *ready, *out)
}

func probe(ctx context.Context, opts bpf.Options, ready, out string) error {
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	// Run-time statistics for the snapshot: what each program costs per run.
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return fmt.Errorf("enable BPF statistics: %w", err)
	}
	defer stats.Close()
	p, err := bpf.Load(opts)
	if err != nil {
		return err
	}
	defer p.Close()
	report, err := p.Attach(ctx)
	if err != nil {
		return err
	}
	attached := report.Attached()
	// The NFS programs too, when the NFS client is there: their tracepoints are in its
	// modules.
	// A kernel they cannot load on (5.10) keeps the SMB programs measuring; the snapshot
	// says why the NFS ones are not there.
	var (
		nfs         *bpf.NFSProbes
		nfsAttached []string
		nfsErr      error
	)
	if _, err := os.Stat("/sys/module/nfs"); err == nil {
		if nfs, nfsErr = p.LoadNFS(bpf.NFSOptions{}); nfsErr == nil {
			defer nfs.Close()
			// The running kernel's NFSv4 procedure order, as the agent learns it from an
			// NFSv4 mount's mountstats (kernels after 6.12 inserted procedures).
			if err := setV4Order(nfs); err != nil {
				return err
			}
			statuses, err := nfs.Attach()
			if err != nil {
				return err
			}
			for _, st := range statuses {
				if st.Attached {
					nfsAttached = append(nfsAttached, st.Name)
				}
			}
		}
	}
	if err := os.WriteFile(ready, []byte(strings.Join(slices.Concat(attached, nfsAttached), "\n")+"\n"), 0o644); err != nil {
		return err
	}
	<-ctx.Done()
	snap, err := guestprobe.Take(p, attached, nfs, nfsAttached)
	if err != nil {
		return err
	}
	if nfsErr != nil {
		snap.NFSError = nfsErr.Error()
	}
	return snap.Write(out)
}

func scrape(url string, w io.Writer) error {
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// setV4Order tells the NFS programs the NFSv4 procedure order of the first NFSv4 mount in
// /proc/self/mountstats, if there is one.
func setV4Order(nfs *bpf.NFSProbes) error {
	f, err := os.Open("/proc/self/mountstats")
	if err != nil {
		return err
	}
	defer f.Close()
	mounts, err := nfsproc.Parse("/proc/self/mountstats", f)
	if err != nil {
		return err
	}
	if codes := nfsproc.V4Order(mounts); codes != nil {
		return nfs.SetV4Procedures(codes)
	}
	return nil
}
