//go:build linux

package bpf

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/linuxdiag/aod/bpf/internal/testprog"
)

// The fallback object must define every map exactly as the main object does: the
// loader hands it the main object's maps, and what the fallback records must be read
// back by the same code.
func TestFallbackObjectSharesTheMainMaps(t *testing.T) {
	opts := Options{StartEntries: 1024, HistogramEntries: 64, ErrorEntries: 32, RingBytes: 1 << 16}.withDefaults()
	main, err := loadAod()
	if err != nil {
		t.Fatal(err)
	}
	fb, err := loadAodfallback()
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range []*ebpf.CollectionSpec{main, fb} {
		if err := sizeSpec(spec, opts); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for name, m := range fb.Maps {
		if name[0] == '.' { // the object's own constants
			continue
		}
		names = append(names, name)
		want, ok := main.Maps[name]
		switch {
		case !ok:
			t.Errorf("map %s is not in the main object", name)
		case m.Type != want.Type || m.KeySize != want.KeySize || m.ValueSize != want.ValueSize ||
			m.MaxEntries != want.MaxEntries || m.Flags != want.Flags:
			t.Errorf("map %s differs: fallback %v, main %v", name, m, want)
		}
	}
	if len(names) != 11 {
		t.Errorf("the fallback defines maps %v, want the main object's 11", names)
	}
	var targets []string
	for _, p := range fb.Programs {
		if p.Type != ebpf.Tracing || p.AttachType != ebpf.AttachTraceFExit {
			t.Errorf("program %s is %v/%v, want fexit", p.Name, p.Type, p.AttachType)
		}
		targets = append(targets, p.AttachTo)
	}
	slices.Sort(targets)
	if want := slices.Sorted(slices.Values(fallbackFunctions[:])); !slices.Equal(targets, want) {
		t.Errorf("fallback programs attach to %v, want %v", targets, want)
	}
}

// The fallback reads the SMB2 header (MS-SMB2 2.2.1.2) from kernel buffers: the fields
// must sit at their wire offsets.
func TestFallbackHeaderLayout(t *testing.T) {
	var h aodfallbackSmb2Hdr
	for _, f := range []struct {
		name      string
		got, want uintptr
	}{
		{"Status", unsafe.Offsetof(h.Status), 8},
		{"Command", unsafe.Offsetof(h.Command), 12},
		{"MessageId", unsafe.Offsetof(h.MessageId), 24},
		{"TreeId", unsafe.Offsetof(h.TreeId), 36},
		{"SessionId", unsafe.Offsetof(h.SessionId), 40},
		{"size", unsafe.Sizeof(h), 48},
	} {
		if f.got != f.want {
			t.Errorf("%s at %d, want %d", f.name, f.got, f.want)
		}
	}
}

// fallbackAttach attaches stand-in tracepoints, the first a request tracepoint, as if
// cifs were loaded, in the given fallback mode.
func fallbackAttach(t *testing.T, mode FallbackMode, tps func(*ebpf.Program) []tracepoint) (AttachReport, error) {
	t.Helper()
	if _, err := os.Stat(cifsModuleDir); err == nil {
		t.Skip("cifs is loaded here: the fallback would attach (the end-to-end test with E2E_FALLBACK=1 checks it)")
	}
	p := loadProbes(t, Options{Logger: slog.New(slog.DiscardHandler), Fallback: mode})
	tp := testprog.Loaded(t, nil)
	return p.attach(context.Background(), t.TempDir(), tps(tp.Count), btf.LoadKernelSpec)
}

func TestForcedFallbackSkipsRequestTracepoints(t *testing.T) {
	r, err := fallbackAttach(t, FallbackForce, func(prog *ebpf.Program) []tracepoint {
		return []tracepoint{
			{"sys_enter", prog, []protoArg{argPtr, argU64}, true, true},
			{"sys_exit", prog, []protoArg{argPtr, argU64}, false, false},
		}
	})
	// Without cifs there is nothing for the fallback to attach to: it fails, and so
	// does the whole attach.
	if !errors.Is(err, ErrRequiredTracepoints) {
		t.Fatalf("attach: %v, want ErrRequiredTracepoints", err)
	}
	if tp := r.Tracepoints[0]; tp.Attached || !errors.Is(tp.Err, errFallbackForced) {
		t.Errorf("request tracepoint %+v: want skipped as forced", tp)
	}
	if tp := r.Tracepoints[1]; tp.Attached || !errors.Is(tp.Err, errDetached) {
		t.Errorf("other tracepoint %+v: want detached with the failed fallback", tp)
	}
	checkFallbackFailed(t, r)
}

func TestAutoFallbackReplacesRequestTracepoints(t *testing.T) {
	r, err := fallbackAttach(t, FallbackAuto, func(prog *ebpf.Program) []tracepoint {
		return []tracepoint{
			{"sys_enter", prog, []protoArg{argPtr, argU64}, false, true},
			{"aod_no_such_tracepoint", prog, nil, true, true},
		}
	})
	if !errors.Is(err, ErrRequiredTracepoints) {
		t.Fatalf("attach: %v, want ErrRequiredTracepoints", err)
	}
	if tp := r.Tracepoints[0]; tp.Attached || !errors.Is(tp.Err, errReplaced) {
		t.Errorf("attached request tracepoint %+v: want detached for the fallback", tp)
	}
	checkFallbackFailed(t, r)
}

func TestFallbackOffIsNotTried(t *testing.T) {
	r, err := fallbackAttach(t, FallbackOff, func(prog *ebpf.Program) []tracepoint {
		return []tracepoint{{"aod_no_such_tracepoint", prog, nil, true, true}}
	})
	if !errors.Is(err, ErrRequiredTracepoints) || len(r.Fallback) != 0 {
		t.Errorf("attach: %v, report %+v: want ErrRequiredTracepoints and no fallback", err, r)
	}
}

func checkFallbackFailed(t *testing.T, r AttachReport) {
	t.Helper()
	if len(r.Fallback) != len(fallbackFunctions) {
		t.Fatalf("fallback report %+v, want %v", r.Fallback, fallbackFunctions)
	}
	for i, f := range r.Fallback {
		if f.Name != fallbackFunctions[i] || f.Attached || f.Err == nil {
			t.Errorf("fallback entry %+v: want %s not attached, with the reason", f, fallbackFunctions[i])
		}
	}
	if got := r.Attached(); len(got) != 0 {
		t.Errorf("Attached() = %v, want nothing", got)
	}
	t.Logf("fallback here: %v", r.Fallback[0].Err)
}
