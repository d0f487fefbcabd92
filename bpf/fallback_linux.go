//go:build linux

package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// fallbackFunctions are the cifs functions the fallback programs attach to, in the
// order of the report: the request start, then the response status mapping.
var fallbackFunctions = [...]string{"smb2_mid_entry_alloc", "map_smb2_to_linux_error"}

// attachFallbackLocked loads the fallback programs (fallback.c) onto the probes' maps
// and attaches them; the caller holds attachMu and the cifs module is loaded (the
// programs name their targets in its BTF). It returns nil links, and nothing stays
// loaded, unless both attached.
func (p *Probes) attachFallbackLocked() ([]FunctionStatus, []link.Link) {
	report := make([]FunctionStatus, len(fallbackFunctions))
	for i, fn := range fallbackFunctions {
		report[i].Name = fn
	}
	fail := func(err error) ([]FunctionStatus, []link.Link) {
		for i := range report {
			if report[i].Err == nil {
				report[i].Attached, report[i].Err = false, err
			}
		}
		return report, nil
	}
	progs, err := p.loadFallback()
	if err != nil {
		return fail(err)
	}
	var links []link.Link
	for i, prog := range []*ebpf.Program{progs.AodMidAlloc, progs.AodStatusMap} {
		l, err := link.AttachTracing(link.TracingOptions{Program: prog})
		if err != nil {
			report[i].Err = fmt.Errorf("attach fexit: %w", err)
			continue
		}
		links = append(links, l)
		report[i].Attached = true
	}
	if len(links) != len(fallbackFunctions) {
		closeLinks(links)
		progs.Close()
		return fail(errDetached)
	}
	p.fallback.Store(progs)
	return report, links
}

// loadFallback loads the fallback programs, sized like the main object, using the
// main object's maps: what they record lands where the tracepoint programs' would.
func (p *Probes) loadFallback() (*aodfallbackPrograms, error) {
	spec, err := loadAodfallback()
	if err != nil {
		return nil, err
	}
	if err := sizeSpec(spec, p.opts); err != nil {
		return nil, err
	}
	m := &p.objs.aodMaps
	shared := map[string]*ebpf.Map{
		aodMapConfig:          m.Config,
		aodMapCounters:        m.Counters,
		aodMapErrors:          m.Errors,
		aodMapEvents:          m.Events,
		aodMapHistograms:      m.Histograms,
		aodMapRecent:          m.Recent,
		aodMapStarts:          m.Starts,
		aodMapThresholds:      m.Thresholds,
		aodMapTrackedErrnos:   m.TrackedErrnos,
		aodMapTrackedStatuses: m.TrackedStatuses,
		aodMapWakeupSeq:       m.WakeupSeq,
	}
	var progs aodfallbackPrograms
	if err := spec.LoadAndAssign(&progs, &ebpf.CollectionOptions{MapReplacements: shared}); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("the verifier rejected the fallback: %+v", ve)
		}
		return nil, fmt.Errorf("load the fallback (needs fexit and BTF for cifs): %w", err)
	}
	return &progs, nil
}
