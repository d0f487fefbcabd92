//go:build linux

package bpf

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// cifsModuleDir appears when the cifs module is loaded (or is built in).
const cifsModuleDir = "/sys/module/cifs"

// protoArg is one TP_PROTO argument as the programs read it: an integer of some size
// or a pointer.
type protoArg struct {
	ptr  bool
	size uint32
}

func (a protoArg) String() string {
	if a.ptr {
		return "ptr"
	}
	return fmt.Sprintf("int%d", 8*a.size)
}

var (
	argU16 = protoArg{size: 2}
	argU32 = protoArg{size: 4}
	argU64 = protoArg{size: 8}
	argPtr = protoArg{ptr: true}
)

// tracepoint is a raw tracepoint, the program for it and the prototype the program
// assumes (fs/smb/client/trace.h).
type tracepoint struct {
	name     string
	prog     *ebpf.Program
	args     []protoArg
	required bool
	// request: measures requests, what the fallback replaces (smb3_cmd_*).
	request bool
}

func (p *Probes) tracepoints() []tracepoint {
	o := &p.objs
	cmd := []protoArg{argU32, argU64, argU16, argU64} // tid, sesid, cmd, mid
	return []tracepoint{
		{"smb3_cmd_enter", o.AodCmdEnter, cmd, true, true},
		{"smb3_cmd_done", o.AodCmdDone, cmd, true, true},
		{"smb3_cmd_err", o.AodCmdErr, append(cmd[:4:4], argU32, argU32), false, true},             // status, rc
		{"smb3_reconnect", o.AodReconnect, []protoArg{argU64, argU64, argPtr}, false, false},      // currmid, conn_id, hostname
		{"smb3_connect_done", o.AodConnectDone, []protoArg{argPtr, argU64, argPtr}, false, false}, // hostname, conn_id, addr
		{"smb3_connect_err", o.AodConnectErr, []protoArg{argPtr, argU64, argPtr, argU32}, false, false},
	}
}

var (
	// errDetached marks tracepoints detached again because a required one failed.
	errDetached = errors.New("detached: a required tracepoint is missing")
	// errFallbackForced marks the request tracepoints Options.Fallback skipped.
	errFallbackForced = errors.New("not attached: the fallback is forced")
	// errReplaced marks request tracepoints detached because the fallback measures
	// requests instead (both would count every request twice).
	errReplaced = errors.New("detached: the fallback measures requests")
)

// Attach attaches every program to its cifs tracepoint. If the cifs module is not
// loaded it says so once and waits for it (polling /sys/module/cifs) until ctx is done;
// no share needs to be mounted. The report lists every tracepoint with its outcome,
// and is logged. Missing optional tracepoints are reported but not an error. If
// smb3_cmd_enter or smb3_cmd_done cannot be attached (or Options.Fallback forces it),
// the fallback programs measure requests instead of all three request tracepoints
// (see FallbackMode; the report's Fallback says how that went); if that is not
// possible either, nothing stays attached and the error wraps ErrRequiredTracepoints.
// No tracefs or bpffs mount is needed.
func (p *Probes) Attach(ctx context.Context) (AttachReport, error) {
	return p.attach(ctx, cifsModuleDir, p.tracepoints(), loadCifsBTF)
}

func (p *Probes) attach(ctx context.Context, moduleDir string, tps []tracepoint, loadBTF func() (*btf.Spec, error)) (AttachReport, error) {
	p.attachMu.Lock()
	err := p.attachableLocked()
	p.attachMu.Unlock()
	if err != nil {
		return AttachReport{}, err
	}
	if err := waitForModule(ctx, p.log, moduleDir, p.opts.ModulePollInterval); err != nil {
		return AttachReport{}, err
	}
	p.attachMu.Lock()
	defer p.attachMu.Unlock()
	if err := p.attachableLocked(); err != nil { // closed or attached while waiting
		return AttachReport{}, err
	}

	spec, err := loadBTF()
	if err != nil {
		p.log.Info("no BTF for cifs: tracepoint prototypes not checked", "error", err)
	}
	var report AttachReport
	links := make([]link.Link, len(tps)) // by tracepoint; nil: not attached
	for i, tp := range tps {
		st := TracepointStatus{Name: tp.name, Required: tp.required}
		switch {
		case tp.request && p.opts.Fallback == FallbackForce:
			st.Err = errFallbackForced
		case spec != nil:
			st.Verified, st.Err = checkProto(spec, tp.name, tp.args)
		}
		if st.Err == nil {
			l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: tp.name, Program: tp.prog})
			if err != nil {
				st.Err = describeAttachError(err)
			} else {
				links[i] = l
				st.Attached = true
			}
		}
		report.Tracepoints = append(report.Tracepoints, st)
	}
	missing := slices.ContainsFunc(report.Tracepoints, func(t TracepointStatus) bool { return t.Required && !t.Attached })

	if missing && p.opts.Fallback != FallbackOff {
		// The fallback measures every request: no request tracepoint stays.
		for i, tp := range tps {
			if tp.request && links[i] != nil {
				links[i].Close()
				links[i] = nil
				report.Tracepoints[i].Attached, report.Tracepoints[i].Err = false, errReplaced
			}
		}
		var fbLinks []link.Link
		report.Fallback, fbLinks = p.attachFallbackLocked()
		missing = fbLinks == nil
		links = append(links, fbLinks...)
	}
	links = slices.DeleteFunc(links, func(l link.Link) bool { return l == nil })
	if missing {
		closeLinks(links)
		for i := range report.Tracepoints {
			if t := &report.Tracepoints[i]; t.Attached {
				t.Attached, t.Err = false, errDetached
			}
		}
	} else {
		p.links = links
	}
	logReport(p.log, report)
	if missing {
		return report, fmt.Errorf("%w: %s", ErrRequiredTracepoints, failedNames(report))
	}
	return report, nil
}

func (p *Probes) attachableLocked() error {
	switch {
	case p.closed:
		return errClosed
	case p.links != nil:
		return errors.New("bpf: already attached")
	}
	return nil
}

func (p *Probes) detachLocked() error {
	err := closeLinks(p.links)
	p.links = nil
	return err
}

func closeLinks(links []link.Link) error {
	var errs []error
	for _, l := range links {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}

func waitForModule(ctx context.Context, log *slog.Logger, dir string, every time.Duration) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	log.Info("cifs kernel module not loaded: waiting for it to attach the SMB probes", "path", dir)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("bpf: waiting for the cifs module: %w", ctx.Err())
		case <-t.C:
			if _, err := os.Stat(dir); err == nil {
				log.Info("cifs kernel module loaded")
				return nil
			}
		}
	}
}

// loadCifsBTF returns the BTF describing the cifs tracepoints: the module's, or
// vmlinux's where cifs is built in.
func loadCifsBTF() (*btf.Spec, error) {
	spec, err := btf.LoadKernelModuleSpec("cifs")
	if errors.Is(err, fs.ErrNotExist) {
		return btf.LoadKernelSpec()
	}
	return spec, err
}

// checkProto compares a tracepoint's prototype, from the btf_trace_<name> typedef the
// kernel emits for every tracepoint, with the arguments the program reads. It returns
// verified false and no error when the BTF does not describe the tracepoint.
func checkProto(spec *btf.Spec, name string, want []protoArg) (bool, error) {
	var td *btf.Typedef
	if err := spec.TypeByName("btf_trace_"+name, &td); err != nil {
		return false, nil
	}
	ptr, ok := btf.UnderlyingType(td.Type).(*btf.Pointer)
	if !ok {
		return false, nil
	}
	fp, ok := btf.UnderlyingType(ptr.Target).(*btf.FuncProto)
	if !ok || len(fp.Params) == 0 {
		return false, nil
	}
	var got []protoArg
	for _, param := range fp.Params[1:] { // the first is the tracepoint's void *__data
		switch t := btf.UnderlyingType(param.Type).(type) {
		case *btf.Pointer:
			got = append(got, argPtr)
		case *btf.Int:
			got = append(got, protoArg{size: t.Size})
		case *btf.Enum:
			got = append(got, protoArg{size: t.Size})
		default:
			got = append(got, protoArg{}) // matches nothing we read
		}
	}
	if !slices.Equal(got, want) {
		return true, fmt.Errorf("prototype (%s) is not the expected (%s)", joinArgs(got), joinArgs(want))
	}
	return true, nil
}

func joinArgs(args []protoArg) string {
	s := make([]string, len(args))
	for i, a := range args {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

func describeAttachError(err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("not in this kernel: %w", err)
	case errors.Is(err, unix.EINVAL):
		// The kernel refuses programs reading more arguments than the tracepoint has.
		return fmt.Errorf("fewer arguments than expected (older cifs?): %w", err)
	}
	return err
}

func failedNames(r AttachReport) string {
	var names []string
	for _, t := range r.Tracepoints {
		if t.Required && !t.Attached {
			names = append(names, t.Name)
		}
	}
	for _, f := range r.Fallback {
		if f.Err != nil {
			names = append(names, fmt.Sprintf("fallback fexit/%s (%v)", f.Name, f.Err))
		}
	}
	return strings.Join(names, ", ")
}

func logReport(log *slog.Logger, r AttachReport) {
	var attached, failed []string
	for _, t := range r.Tracepoints {
		if t.Attached {
			attached = append(attached, t.Name)
			continue
		}
		failed = append(failed, t.Name)
		log.Warn("cifs tracepoint not attached", "tracepoint", t.Name, "required", t.Required, "error", t.Err)
	}
	for _, f := range r.Fallback {
		if f.Attached {
			attached = append(attached, "fexit/"+f.Name)
			continue
		}
		failed = append(failed, "fexit/"+f.Name)
		log.Warn("fallback probe not attached", "function", f.Name, "error", f.Err)
	}
	log.Info("cifs tracepoints", "attached", attached, "not_attached", failed)
}
