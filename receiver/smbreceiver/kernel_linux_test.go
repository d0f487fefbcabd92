//go:build linux

package smbreceiver

import (
	"errors"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/smb"
)

// thresholdVal mirrors struct threshold.
type thresholdVal struct {
	Ns      uint64
	Enabled uint32
	_       uint32
}

// kernelDriver runs the real request programs of a loaded bpf.Probes with
// BPF_PROG_TEST_RUN, as the cifs tracepoints would run them. The bpf package keeps its
// programs unexported, so they are found in the kernel by ID: the completion programs
// by a random threshold written through the package's own API into their thresholds
// map, the enter program by the start table it shares with them.
type kernelDriver struct {
	t      *testing.T
	probes *bpf.Probes
	enter  *ebpf.Program
	done   *ebpf.Program
	fail   *ebpf.Program
	tid    uint32 // the thread the programs run on
}

// loadKernel loads the production probes and finds their request programs. It
// skips where BPF cannot be loaded.
func loadKernel(t *testing.T) *kernelDriver {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loading BPF programs needs root (CI runs the BPF tests as root)")
	}
	p, err := bpf.Load(bpf.Options{})
	if errors.Is(err, unix.EPERM) {
		t.Skipf("BPF not permitted here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })

	var marker [smb.NumCommands]bpf.Threshold
	markerNs := uint64(rand.N(1<<40)) + 1
	marker[smb.OplockBreak] = bpf.Threshold{Tracked: true, Latency: time.Duration(markerNs)}
	if err := p.SetThresholds(&marker); err != nil {
		t.Fatal(err)
	}
	k := &kernelDriver{t: t, probes: p}
	var enters []*ebpf.Program
	startsID := ebpf.MapID(0)
	for id := ebpf.ProgramID(0); ; {
		id, err = ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		prog, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // unloaded meanwhile
		}
		t.Cleanup(func() { prog.Close() })
		info, err := prog.Info()
		if err != nil {
			continue
		}
		switch info.Name {
		case "aod_cmd_enter":
			enters = append(enters, prog)
		case "aod_cmd_done", "aod_cmd_err":
			starts, ours := ownMaps(info, markerNs)
			if !ours {
				continue
			}
			startsID = starts
			if info.Name == "aod_cmd_done" {
				k.done = prog
			} else {
				k.fail = prog
			}
		}
	}
	for _, prog := range enters {
		if info, err := prog.Info(); err == nil && usesMap(info, startsID) {
			k.enter = prog
		}
	}
	if k.enter == nil || k.done == nil || k.fail == nil {
		t.Fatal("the loaded probes' programs were not found in the kernel")
	}
	// The enter program records the current task: run them all from one thread.
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	k.tid = uint32(unix.Gettid())
	return k
}

// ownMaps tells whether a program uses the thresholds map holding the marker, and
// returns the ID of its start table.
func ownMaps(info *ebpf.ProgramInfo, markerNs uint64) (starts ebpf.MapID, ours bool) {
	ids, _ := info.MapIDs()
	for _, id := range ids {
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			continue
		}
		if mi, err := m.Info(); err == nil {
			switch mi.Name {
			case "thresholds":
				var v thresholdVal
				ours = m.Lookup(uint32(smb.OplockBreak), &v) == nil && v.Ns == markerNs
			case "starts":
				starts = id
			}
		}
		m.Close()
	}
	return starts, ours
}

func usesMap(info *ebpf.ProgramInfo, id ebpf.MapID) bool {
	ids, _ := info.MapIDs()
	for _, m := range ids {
		if m == id {
			return true
		}
	}
	return false
}

// start runs smb3_cmd_enter for a request issued by the test's thread.
func (k *kernelDriver) start(tid uint32, ses uint64, cmd uint16, mid uint64) {
	k.t.Helper()
	if _, err := k.enter.Run(&ebpf.RunOptions{Context: []uint64{uint64(tid), ses, uint64(cmd), mid}}); err != nil {
		k.t.Fatal(err)
	}
}

// comm is the name the kernel gives the test's thread.
func (k *kernelDriver) comm() string {
	k.t.Helper()
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(int(k.tid)) + "/comm")
	if err != nil {
		k.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// complete runs smb3_cmd_done for the request.
func (k *kernelDriver) complete(tid uint32, ses uint64, cmd uint16, mid uint64) {
	k.t.Helper()
	if _, err := k.done.Run(&ebpf.RunOptions{Context: []uint64{uint64(tid), ses, uint64(cmd), mid}}); err != nil {
		k.t.Fatal(err)
	}
}

// failWith runs smb3_cmd_err for the request.
func (k *kernelDriver) failWith(tid uint32, ses uint64, cmd uint16, mid uint64, status uint32, rc int32) {
	k.t.Helper()
	ctx := []uint64{uint64(tid), ses, uint64(cmd), mid, uint64(status), uint64(int64(rc))}
	if _, err := k.fail.Run(&ebpf.RunOptions{Context: ctx}); err != nil {
		k.t.Fatal(err)
	}
}
