//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/internal/smb"
)

// NTSTATUS values the driver's failures carry.
const (
	statusObjectNameNotFound = 0xc0000034 // the common failure (lookups)
	statusLogonFailure       = 0xc000006d // tracked by the default "authentication" rule (acceptable_count 1)
)

// kernelObjects are the agent's BPF programs and maps, reached by id from the file
// descriptors it holds (/proc/PID/fdinfo), so the driver runs the very programs the
// agent reads the ring and maps of.
type kernelObjects struct {
	progs   map[string]*ebpf.Program
	maps    []agentMap
	enter   *ebpf.Program
	done    *ebpf.Program
	errProg *ebpf.Program
}

// agentMap is one of the agent's maps.
type agentMap struct {
	m    *ebpf.Map
	info *ebpf.MapInfo
}

func openAgentObjects(pid int) (*kernelObjects, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fdinfo", pid))
	if err != nil {
		return nil, err
	}
	k := &kernelObjects{progs: map[string]*ebpf.Program{}}
	seenMaps := map[uint64]bool{}
	for _, fd := range fds {
		fields, err := fdinfo(filepath.Join(fmt.Sprintf("/proc/%d/fdinfo", pid), fd.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if id, ok := fields["prog_id"]; ok {
			p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
			if err != nil {
				return nil, fmt.Errorf("program %d: %w", id, err)
			}
			info, err := p.Info()
			if err != nil {
				return nil, err
			}
			k.progs[info.Name] = p
		}
		if id, ok := fields["map_id"]; ok && !seenMaps[id] {
			seenMaps[id] = true
			m, err := ebpf.NewMapFromID(ebpf.MapID(id))
			if err != nil {
				return nil, fmt.Errorf("map %d: %w", id, err)
			}
			info, err := m.Info()
			if err != nil {
				return nil, err
			}
			k.maps = append(k.maps, agentMap{m: m, info: info})
		}
	}
	k.enter, k.done, k.errProg = k.progs["aod_cmd_enter"], k.progs["aod_cmd_done"], k.progs["aod_cmd_err"]
	if k.enter == nil || k.done == nil || k.errProg == nil {
		err := fmt.Errorf("agent %d holds programs %v, not aod_cmd_enter, aod_cmd_done and aod_cmd_err", pid, k.names())
		k.close()
		return nil, err
	}
	return k, nil
}

// close lets go of the programs and maps, so that a stopped agent's are freed. It may
// be called more than once.
func (k *kernelObjects) close() {
	for name, p := range k.progs {
		p.Close()
		delete(k.progs, name)
	}
	for _, m := range k.maps {
		m.m.Close()
	}
	k.maps, k.enter, k.done, k.errProg = nil, nil, nil, nil
}

func (k *kernelObjects) names() []string {
	var n []string
	for name := range k.progs {
		n = append(n, name)
	}
	return n
}

func (k *kernelObjects) mapNamed(name string) *agentMap {
	for i := range k.maps {
		if k.maps[i].info.Name == name {
			return &k.maps[i]
		}
	}
	return nil
}

// runTime sums the kernel's run-time statistics of the agent's programs.
func (k *kernelObjects) runTime() (time.Duration, uint64, error) {
	var total time.Duration
	var runs uint64
	for _, p := range k.progs {
		st, err := p.Stats()
		if err != nil {
			return 0, 0, err
		}
		total += st.Runtime
		runs += st.RunCount
	}
	return total, runs, nil
}

// fdinfo reads the numeric "key:\tvalue" lines of a /proc/PID/fdinfo file.
func fdinfo(path string) (map[string]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 0, 64); err == nil {
			out[k] = n
		}
	}
	return out, sc.Err()
}

// request is what the driver sends: one SMB request, entered and completed.
type request struct {
	tree    uint32
	command uint16
	status  uint32 // 0: completed by smb3_cmd_done
	rc      int64
}

// driver runs request pairs through the agent's programs with BPF_PROG_TEST_RUN.
type driver struct {
	k                         *kernelObjects
	mid                       uint64
	enterRun, doneRun, errRun *runner
}

func newDriver(k *kernelObjects) *driver {
	// smb3_cmd_enter/done(tid, sesid, cmd, mid); smb3_cmd_err adds (status, rc).
	return &driver{k: k, enterRun: newRunner(k.enter, 4), doneRun: newRunner(k.done, 4), errRun: newRunner(k.errProg, 6)}
}

// enter runs smb3_cmd_enter(tid, sesid, cmd, mid) for a new request and returns its mid.
func (d *driver) enter(r request) (uint64, error) {
	d.mid++
	a := d.enterRun.args
	a[0], a[1], a[2], a[3] = uint64(r.tree), benchSession, uint64(r.command), d.mid
	return d.mid, d.enterRun.run()
}

// complete runs smb3_cmd_done, or smb3_cmd_err(..., status, rc) for a failure.
func (d *driver) complete(r request, mid uint64) error {
	if r.status == 0 {
		a := d.doneRun.args
		a[0], a[1], a[2], a[3] = uint64(r.tree), benchSession, uint64(r.command), mid
		return d.doneRun.run()
	}
	a := d.errRun.args
	a[0], a[1], a[2], a[3], a[4], a[5] = uint64(r.tree), benchSession, uint64(r.command), mid, uint64(r.status), uint64(r.rc)
	return d.errRun.run()
}

func (d *driver) pair(r request) error {
	mid, err := d.enter(r)
	if err != nil {
		return err
	}
	return d.complete(r, mid)
}

// seriesOf is the i-th request of the series a share carries in the bench: READ,
// WRITE and CREATE that succeed, CREATE that fails with STATUS_OBJECT_NAME_NOT_FOUND.
func seriesOf(share int, i int) request {
	r := request{tree: uint32(share + 1)}
	switch i % seriesPerShare {
	case 0:
		r.command = smb.Read
	case 1:
		r.command = smb.Write
	case 2:
		r.command = smb.Create
	default:
		r.command, r.status, r.rc = smb.Create, statusObjectNameNotFound, -int64(unix.ENOENT)
	}
	return r
}

const seriesPerShare = 4

// steadyShares is how many shares the steady-rate traffic spreads over.
const steadyShares = 10

// tick is the driver's pacing period; slowTicks is how many ticks a slow request stays
// in flight, over the default configuration's 100 ms threshold.
const (
	tick      = 10 * time.Millisecond
	slowTicks = 12
)

// rateResult is what one steady rate cost.
type rateResult struct {
	pairs       uint64
	elapsed     time.Duration
	agentCPU    time.Duration
	driverCPU   time.Duration
	kernelTime  time.Duration
	kernelRuns  uint64
	ticksBehind int
}

// steady feeds perSecond request pairs a second for d: every 100th is slow (completed
// slowTicks ticks after it entered), every 1000th fails with
// STATUS_OBJECT_NAME_NOT_FOUND; the rest succeed at once. The pattern is fixed: which
// request is which depends only on its number.
func (d *driver) steady(agentPID int, perSecond int, dur time.Duration) (rateResult, error) {
	perTick := perSecond * int(tick/time.Millisecond) / 1000
	type pending struct {
		r   request
		mid uint64
		due int
	}
	var slow []pending
	var res rateResult
	a0, err := processCPU(agentPID)
	if err != nil {
		return res, err
	}
	s0, err := processCPU(os.Getpid())
	if err != nil {
		return res, err
	}
	k0, n0, err := d.k.runTime()
	if err != nil {
		return res, err
	}
	start := time.Now()
	ticks := int(dur / tick)
	var n uint64
	for t := range ticks {
		if wait := time.Until(start.Add(time.Duration(t) * tick)); wait > 0 {
			time.Sleep(wait)
		} else if wait < -tick {
			res.ticksBehind++
		}
		for len(slow) > 0 && slow[0].due <= t {
			if err := d.complete(slow[0].r, slow[0].mid); err != nil {
				return res, err
			}
			slow = slow[1:]
		}
		for range perTick {
			n++
			// The series that succeed, in turn; the failing one only every 1000th,
			// its share in turn too.
			r := seriesOf(int(n/seriesPerShare)%steadyShares, int(n%(seriesPerShare-1)))
			switch {
			case n%1000 == 0:
				r = seriesOf(int(n/1000)%steadyShares, seriesPerShare-1)
			case n%100 == 0:
				r.command = smb.Read
				mid, err := d.enter(r)
				if err != nil {
					return res, err
				}
				slow = append(slow, pending{r, mid, t + slowTicks})
				continue
			}
			if err := d.pair(r); err != nil {
				return res, err
			}
		}
	}
	for _, p := range slow {
		if err := d.complete(p.r, p.mid); err != nil {
			return res, err
		}
	}
	res.elapsed = time.Since(start)
	res.pairs = n
	a1, err := processCPU(agentPID)
	if err != nil {
		return res, err
	}
	s1, err := processCPU(os.Getpid())
	if err != nil {
		return res, err
	}
	k1, n1, err := d.k.runTime()
	if err != nil {
		return res, err
	}
	res.agentCPU, res.driverCPU, res.kernelTime, res.kernelRuns = a1-a0, s1-s0, k1-k0, n1-n0
	return res, nil
}

// processCPU is a process's user plus system time, all threads, from /proc/PID/stat.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count fields after its ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc/PID/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc/PID/stat")
	}
	// Fields 14 and 15 (utime, stime) are the 12th and 13th after the name.
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every Linux ABI.
const clockTicks = 100

// rssBytes is a process's resident memory (VmRSS).
func rssBytes(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}
