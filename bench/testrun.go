//go:build linux

package main

import (
	"runtime"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// testRunAttr is union bpf_attr's test member, as BPF_PROG_TEST_RUN reads it.
type testRunAttr struct {
	progFD, retval          uint32
	dataSizeIn, dataSizeOut uint32
	dataIn, dataOut         uint64
	repeat, duration        uint32
	ctxSizeIn, ctxSizeOut   uint32
	ctxIn, ctxOut           uint64
	flags, cpu              uint32
	batchSize, _            uint32
}

// runner runs one program on a context of u64 arguments with BPF_PROG_TEST_RUN,
// straight through the system call: ebpf.Program.Run marshals the context and
// retries on every call, which would make the driver, not the agent, the bottleneck
// at 100,000 pairs a second.
type runner struct {
	prog *ebpf.Program
	args []uint64
	attr testRunAttr
}

func newRunner(p *ebpf.Program, nargs int) *runner {
	return &runner{prog: p, args: make([]uint64, nargs)}
}

func (r *runner) run() error {
	r.attr = testRunAttr{progFD: uint32(r.prog.FD()), ctxSizeIn: uint32(8 * len(r.args)),
		ctxIn: uint64(uintptr(unsafe.Pointer(&r.args[0])))}
	_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_TEST_RUN, uintptr(unsafe.Pointer(&r.attr)), unsafe.Sizeof(r.attr))
	runtime.KeepAlive(r.args)
	if errno != 0 {
		return errno
	}
	return nil
}
