//go:build linux

package bpf

// The tests of what the programs do are in package bpf_test, driven by bpf/bpftest;
// these need the package's insides.

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/linuxdiag/aod/bpf/internal/testprog"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/latencyhist"
)

func TestEveryProgramLoadsThroughTheVerifier(t *testing.T) {
	p := loadProbes(t, Options{})
	progs := p.programs()
	if len(progs) != 6 {
		t.Fatalf("%d programs, want 6", len(progs))
	}
	stats, err := p.ProgramStats()
	if err != nil || len(stats) != len(progs) {
		t.Fatalf("ProgramStats: %d programs, %v; want %d", len(stats), err, len(progs))
	}
	for name, prog := range progs {
		if prog == nil || prog.Type() != ebpf.RawTracepoint {
			t.Fatalf("program %s (%v) is not a loaded raw tracepoint program", name, prog)
		}
		info, err := prog.Info()
		if err != nil {
			t.Fatal(err)
		}
		if n, ok := info.VerifiedInstructions(); ok && n == 0 {
			t.Errorf("%s: the verifier checked no instructions", info.Name)
		}
		// The kernel keeps the first 15 bytes of a name.
		if !strings.HasPrefix(name, info.Name) || info.Name == "" {
			t.Errorf("program %q is %q in the kernel", name, info.Name)
		}
		if stats[name] == nil {
			t.Errorf("ProgramStats has no %s", name)
		}
	}
	// The test-only object compiles the same bucket search and record layout.
	testprog.Loaded(t, p.objs.Events)
}

func TestKernelBucketSearchMatchesLatencyhist(t *testing.T) {
	tp := testprog.Loaded(t, nil)
	check := func(ns uint64) {
		t.Helper()
		slot, err := tp.Slot.Run(&ebpf.RunOptions{Context: []uint64{ns}})
		if err != nil {
			t.Fatal(err)
		}
		want := uint32(0)
		if j, zero := latencyhist.BucketOf(ns); !zero {
			want = uint32(j) + 1
		}
		if slot != want {
			t.Fatalf("kernel slot of %d ns = %d, want %d", ns, slot, want)
		}
	}
	for k := range latencyhist.NumBuckets + 1 {
		b := latencyhist.BoundNs(k)
		check(b - 1)
		check(b)
		check(b + 1)
	}
	for _, ns := range []uint64{0, 1, math.MaxUint64} {
		check(ns)
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		check(r.Uint64N(1 << 45))
	}
}

// TestEventLayoutMatchesTheKernel pins struct event's layout three ways: the bpf2go
// type (the kernel's), the offsets EncodeEvent writes at, and event.Event, which
// DecodeEvent fills with one copy of the record.
func TestEventLayoutMatchesTheKernel(t *testing.T) {
	var e aodEvent
	var g event.Event
	if int(unsafe.Sizeof(e)) != EventSize || binary.Size(e) != EventSize || unsafe.Sizeof(g) != EventSize {
		t.Fatalf("struct event is %d bytes (binary %d), event.Event %d, EventSize %d", unsafe.Sizeof(e), binary.Size(e), unsafe.Sizeof(g), EventSize)
	}
	for _, f := range []struct {
		name         string
		got, gop, at uintptr
	}{
		{"start_ns", unsafe.Offsetof(e.StartNs), unsafe.Offsetof(g.StartNs), offStartNs},
		{"end_ns", unsafe.Offsetof(e.EndNs), unsafe.Offsetof(g.EndNs), offEndNs},
		{"session_id", unsafe.Offsetof(e.SessionId), unsafe.Offsetof(g.SessionID), offSessionID},
		{"mid", unsafe.Offsetof(e.Mid), unsafe.Offsetof(g.MessageID), offMid},
		{"conn_id", unsafe.Offsetof(e.ConnId), unsafe.Offsetof(g.ConnID), offConnID},
		{"pid", unsafe.Offsetof(e.Pid), unsafe.Offsetof(g.Pid), offPid},
		{"tgid", unsafe.Offsetof(e.Tgid), unsafe.Offsetof(g.Tgid), offTgid},
		{"tree_id", unsafe.Offsetof(e.TreeId), unsafe.Offsetof(g.TreeID), offTreeID},
		{"status", unsafe.Offsetof(e.Status), unsafe.Offsetof(g.Status), offStatus},
		{"rc", unsafe.Offsetof(e.Rc), unsafe.Offsetof(g.Rc), offRc},
		{"command", unsafe.Offsetof(e.Command), unsafe.Offsetof(g.Command), offCommand},
		{"kind", unsafe.Offsetof(e.Kind), unsafe.Offsetof(g.Kind), offKind},
		{"protocol", unsafe.Offsetof(e.Protocol), unsafe.Offsetof(g.Protocol), offProtocol},
		{"comm", unsafe.Offsetof(e.Comm), unsafe.Offsetof(g.Comm), offComm},
		{"server", unsafe.Offsetof(e.Server), unsafe.Offsetof(g.Server), offServer},
		{"cgroup_id", unsafe.Offsetof(e.CgroupId), unsafe.Offsetof(g.CgroupID), offCgroupID},
	} {
		if f.got != f.at || f.gop != f.at {
			t.Errorf("field %s at offset %d, event.Event's at %d, EncodeEvent writes at %d", f.name, f.got, f.gop, f.at)
		}
	}
	// The record is in the host's byte order; EncodeEvent writes little-endian.
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Error("a big-endian host: aod's BPF objects and records are little-endian")
	}
	if len(e.Comm) != len(event.Event{}.Comm) || len(e.Server) != len(event.Event{}.Server) {
		t.Error("comm or server sizes differ from event.Event")
	}
	for _, k := range []struct {
		c aodEventKind
		g event.Kind
	}{
		{aodEventKindAOD_KIND_SLOW, event.KindSlow},
		{aodEventKindAOD_KIND_ERROR, event.KindError},
		{aodEventKindAOD_KIND_RECONNECT, event.KindReconnect},
		{aodEventKindAOD_KIND_CONNECT, event.KindConnect},
		{aodEventKindAOD_KIND_CONNECT_ERROR, event.KindConnectError},
	} {
		if uint32(k.c) != uint32(k.g) {
			t.Errorf("C kind %d is Go kind %d", k.c, k.g)
		}
	}
	if aodCounterAOD_NUM_COUNTERS != 10 {
		t.Errorf("%d kernel counters; Counters reads 10", aodCounterAOD_NUM_COUNTERS)
	}
	var hv aodHistVal
	if len(hv.Slots) != latencyhist.NumBuckets+1 {
		t.Errorf("kernel histogram has %d slots, latencyhist %d buckets + zero", len(hv.Slots), latencyhist.NumBuckets)
	}
}

func TestMethodsAfterCloseFail(t *testing.T) {
	testprog.Require(t)
	p, err := Load(Options{})
	testprog.CheckLoad(t, err)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := p.InFlight(nil); err == nil {
		t.Error("InFlight after Close succeeded")
	}
	if _, err := p.SweepStale(time.Second); err == nil {
		t.Error("SweepStale after Close succeeded")
	}
	if _, err := p.Histograms(nil); err == nil {
		t.Error("Histograms after Close succeeded")
	}
	if _, err := p.Counters(); err == nil {
		t.Error("Counters after Close succeeded")
	}
	if _, err := p.ProgramStats(); err == nil {
		t.Error("ProgramStats after Close succeeded")
	}
	if _, err := p.Attach(context.Background()); !errors.Is(err, errClosed) {
		t.Errorf("Attach after Close: %v", err)
	}
}
