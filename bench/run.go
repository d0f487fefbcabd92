//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/internal/smb"
)

// rateDuration is how long each steady request rate is held (-rate-duration).
const rateDuration = 60 * time.Second

func run(results string, rateFor time.Duration, profile string) error {
	if os.Geteuid() != 0 {
		return errors.New("the benchmarks load BPF programs and read another process's: run as root")
	}
	started := time.Now()
	rep := &report{out: os.Stdout}
	machine := describeMachine(started)
	for _, l := range machine {
		fmt.Println("#", l)
	}
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		return fmt.Errorf("enable BPF run-time statistics: %w", err)
	}
	defer stats.Close()

	dir, err := os.MkdirTemp("", "aod-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sink, err := startSink()
	if err != nil {
		return err
	}
	defer sink.srv.Close()
	// The phases up to the steady rates measure an agent exporting at the default
	// period; the series phases one exporting every seriesExportInterval.
	ag, k, d, err := startDriven(filepath.Join(dir, "default"), sink.url, profile, 0)
	if err != nil {
		return err
	}
	defer ag.stop()
	defer k.close()

	if err := memoryIdle(rep, ag, k); err != nil {
		return err
	}
	pairs, err := pairCost(d)
	if err != nil {
		return err
	}
	rep.add("kernel_pair_ns", pairs.aod, "ns")
	rep.add("minimal_pair_ns", pairs.minimal, "ns")
	rep.add("kernel_pair_ratio_to_minimal", pairs.aod/pairs.minimal, "ratio")
	rep.add("clock_pair_ns", pairs.clock, "ns")
	rep.add("clock_pair_ratio_to_minimal", pairs.clock/pairs.minimal, "ratio")
	rep.add("floor_pair_ns", pairs.floor, "ns")
	rep.add("floor_pair_ratio_to_minimal", pairs.floor/pairs.minimal, "ratio")
	rep.add("kernel_pair_ratio_to_floor", pairs.aod/pairs.floor, "ratio")

	if err := anomalyToBundle(rep, ag, d); err != nil {
		return err
	}
	for _, rate := range []struct {
		name      string
		perSecond int
	}{{"10k", 10_000}, {"100k", 100_000}} {
		sink.takeLogBytes()
		r, err := d.steady(ag.pid(), rate.perSecond, rateFor)
		if err != nil {
			return err
		}
		secs := r.elapsed.Seconds()
		rep.add("agent_cpu_percent_"+rate.name, 100*r.agentCPU.Seconds()/secs, "%")
		rep.add("achieved_pairs_per_s_"+rate.name, float64(r.pairs)/secs, "pairs/s")
		rep.add("driver_cpu_percent_"+rate.name, 100*r.driverCPU.Seconds()/secs, "%")
		rep.add("kernel_prog_ns_per_s_"+rate.name, float64(r.kernelTime.Nanoseconds())/secs, "ns/s")
		rep.add("kernel_prog_ns_per_pair_"+rate.name, float64(r.kernelTime.Nanoseconds())/float64(r.pairs), "ns")
		rep.add("otlp_log_bytes_per_s_"+rate.name, float64(sink.takeLogBytes())/secs, "B/s")
	}
	ag.stop()
	k.close()
	sag, sk, sd, err := startDriven(filepath.Join(dir, "series"), sink.url, "", seriesExportInterval)
	if err != nil {
		return err
	}
	defer sag.stop()
	defer sk.close()
	if err := seriesPhases(rep, sag, sk, sd, sink); err != nil {
		return err
	}
	sag.stop()
	for _, size := range []int{64, 1024, 65536} {
		r, err := replay(size)
		if err != nil {
			return err
		}
		rep.add(fmt.Sprintf("replay_mevents_per_s_batch_%d", size), r/1e6, "Mevents/s")
	}
	rep.add("bench_seconds", time.Since(started).Seconds(), "s")
	return writeResults(results, machine, rep.figures)
}

// startDriven starts an agent child (startAgent) and a driver of the programs it
// loaded. The agent serves /metrics before its receiver has loaded them.
func startDriven(dir, otlpURL, profile string, exportEvery time.Duration) (*agentProc, *kernelObjects, *driver, error) {
	ag, err := startAgent(dir, otlpURL, profile, exportEvery)
	if err != nil {
		return nil, nil, nil, err
	}
	var k *kernelObjects
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if k, err = openAgentObjects(ag.pid()); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		ag.stop()
		return nil, nil, nil, err
	}
	return ag, k, newDriver(k), nil
}

// memoryIdle reports the idle agent's resident memory and its kernel maps' memory:
// as the kernel charges it here, and as modelled for 2, 64 and 256 CPUs.
func memoryIdle(rep *report, ag *agentProc, k *kernelObjects) error {
	time.Sleep(3 * time.Second) // past the start-up collection
	rss, err := rssBytes(ag.pid())
	if err != nil {
		return err
	}
	rep.add("rss_mb_idle", float64(rss)/(1<<20), "MiB")
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	return mapMemory(rep, k, ncpu, "")
}

// mapMemory reports the kernel memory of the agent's maps now: as the kernel
// charges it on this machine (ncpu possible CPUs), and as modelled for 2, 64 and 256
// CPUs with the entries now live.
func mapMemory(rep *report, k *kernelObjects, ncpu int, suffix string) error {
	var measured uint64
	modelled := map[int]uint64{}
	for _, m := range k.maps {
		// The map's fdinfo is the same through any descriptor: read the bench's own.
		fields, err := fdinfo(fmt.Sprintf("/proc/self/fdinfo/%d", m.m.FD()))
		if err != nil {
			return err
		}
		measured += fields["memlock"]
		live := uint64(0)
		if m.info.Flags&unix.BPF_F_NO_PREALLOC != 0 {
			live = uint64(countEntries(&m))
		}
		for _, cpus := range []int{2, 64, 256} {
			modelled[cpus] += mapBytes(m.info, cpus, live)
		}
	}
	rep.add(fmt.Sprintf("kernel_map_mb_measured_%dcpu%s", ncpu, suffix), float64(measured)/(1<<20), "MiB")
	for _, cpus := range []int{2, 64, 256} {
		rep.add(fmt.Sprintf("kernel_map_mb_%dcpu%s", cpus, suffix), float64(modelled[cpus])/(1<<20), "MiB")
	}
	return nil
}

// anomalyToBundle sends one failure the default "authentication" rule fires on at
// its first occurrence and times it to the bundle's rename into batches/.
func anomalyToBundle(rep *report, ag *agentProc, d *driver) error {
	batches := filepath.Join(ag.outputDir, "batches")
	r := request{tree: 1, command: smb.SessionSetup, status: statusLogonFailure, rc: -int64(unix.EACCES)}
	mid, err := d.enter(r)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := d.complete(r, mid); err != nil {
		return err
	}
	for deadline := t0.Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		found, _ := filepath.Glob(filepath.Join(batches, "aod_quick_*_smb_error.tar.zst"))
		if len(found) > 0 {
			rep.add("anomaly_to_bundle_ms", float64(time.Since(t0).Microseconds())/1000, "ms")
			return nil
		}
	}
	return errors.New("no bundle within 2 minutes of the triggering failure")
}

// seriesPhases gives the agent 10, 250 and 1000 shares of traffic (seriesPerShare
// series each, shares added to those before) and reports, once the agent collected
// and exported them, the OTLP and /metrics payloads and the agent's memory.
func seriesPhases(rep *report, ag *agentProc, k *kernelObjects, d *driver, sink *otlpSink) error {
	hist := k.mapNamed("histograms")
	for _, shares := range []int{10, 100, 250, 1000} {
		if err := writeDebugData(ag.procDir, shares); err != nil {
			return err
		}
		for i := range shares * seriesPerShare * 3 {
			if err := d.pair(seriesOf(i/seriesPerShare%shares, i)); err != nil {
				return err
			}
		}
		// Two exports later every series is in both payloads.
		sent := time.Now()
		if _, ok := sink.metricsAfter(sent, 3*seriesExportInterval); !ok {
			return errors.New("no OTLP metrics export")
		}
		otlp, ok := sink.metricsAfter(time.Now(), 3*seriesExportInterval)
		if !ok {
			return errors.New("no OTLP metrics export")
		}
		prom, err := scrape(ag.promURL)
		if err != nil {
			return err
		}
		series := shares * seriesPerShare
		if shares != 250 {
			rep.add(fmt.Sprintf("otlp_metrics_bytes_%d_shares", shares), float64(otlp), "B")
			rep.add(fmt.Sprintf("prometheus_bytes_%d_shares", shares), float64(prom), "B")
		}
		live := countEntries(hist)
		rep.add(fmt.Sprintf("kernel_histogram_entries_%d_series", series), float64(live), "entries")
		if series == 1000 {
			rss, err := rssBytes(ag.pid())
			if err != nil {
				return err
			}
			rep.add("rss_mb_1000_series", float64(rss)/(1<<20), "MiB")
			ncpu, err := ebpf.PossibleCPU()
			if err != nil {
				return err
			}
			if err := mapMemory(rep, k, ncpu, "_1000_series"); err != nil {
				return err
			}
		}
	}
	return nil
}

// countEntries counts a hash map's entries.
func countEntries(m *agentMap) int {
	if m == nil {
		return -1
	}
	n := 0
	key := make([]byte, m.info.KeySize)
	var prev any
	for m.m.NextKey(prev, &key) == nil {
		n++
		prev = key
	}
	return n
}

// describeMachine names what the figures were measured on.
func describeMachine(now time.Time) []string {
	model := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	var u unix.Utsname
	unix.Uname(&u)
	host, _ := os.Hostname()
	return []string{
		"date " + now.UTC().Format(time.RFC3339),
		"host " + host,
		"cpu " + model,
		fmt.Sprintf("cores %d", runtime.NumCPU()),
		"kernel " + unix.ByteSliceToString(u.Release[:]),
		"go " + runtime.Version(),
	}
}

func writeResults(path string, machine []string, figures []figure) error {
	var b strings.Builder
	for _, l := range machine {
		b.WriteString("# " + l + "\n")
	}
	for _, f := range figures {
		b.WriteString(f.line() + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return err
	}
	fmt.Println("# results written to", path)
	return nil
}
