// Package guestprobe is what the e2e guest's probe reports about aod's BPF programs and
// what the host-side assertions read: per-command completions and failures as the
// programs counted them, the requests they still hold as in flight, and their loss
// counters; and what the NFS programs counted per RPC client and procedure. It is shared
// so both ends agree on one JSON shape.
package guestprobe

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"

	"github.com/linuxdiag/aod/bpf"
)

// Snapshot is the state of the probes at one instant.
type Snapshot struct {
	// Attached lists the tracepoints the SMB programs attached to.
	Attached []string
	// Completions counts, per SMB2 command code, the requests whose completion the
	// programs measured (smb3_cmd_done or smb3_cmd_err, the first one only).
	Completions map[uint16]uint64
	// Failures counts, per command code and NTSTATUS, the failed completions.
	Failures []Failure
	// InFlight are the requests whose start was seen and whose completion was not.
	InFlight []Request
	Counters bpf.Counters
	// Programs are the programs' kernel run statistics by name (bpf.Probes.ProgramStats,
	// bpf.NFSProbes.ProgramStats), counted while the probe held BPF statistics enabled.
	Programs map[string]ProgramRuns
	// NFSAttached lists the tracepoints the NFS programs attached to, when they were
	// loaded.
	NFSAttached []string
	// NFS are the NFS programs' histogram totals per (RPC client, procedure, status),
	// when they were loaded: status 0 for the RPCs that succeeded.
	NFS []NFSCount
	// NFSFailures are the NFS programs' failure counts per (RPC client, procedure,
	// status).
	NFSFailures []NFSCount
	// NFSError says why the NFS programs were not loaded while the NFS client was there
	// (5.10: no BTF of the sunrpc module to relocate their reads against).
	NFSError string `json:",omitempty"`
}

// NFSCount is a number of RPCs of one RPC client, NFS procedure code (internal/nfs)
// and status (NFS status, or uint32(-errno) for a failure without one).
type NFSCount struct {
	Client    uint64
	Procedure uint16
	Status    uint32
	Count     uint64
}

// ProgramRuns is one program's total run time and number of runs, and the runs the
// kernel skipped (the program was already running on that CPU).
type ProgramRuns struct {
	RunTimeNs uint64
	Runs      uint64
	Skipped   uint64
}

// Failure is the number of failures of one command with one NTSTATUS.
type Failure struct {
	Command uint16
	Status  uint32
	Count   uint64
}

// Request identifies one request the programs hold as in flight.
type Request struct {
	SessionID uint64
	MessageID uint64
	Command   uint16
	Comm      string // the task that issued it
	StartNs   uint64 // CLOCK_MONOTONIC ns at smb3_cmd_enter: the trace's clock
}

// Take reads the probes' maps and counters, and the NFS programs' when nfs is not nil. SMB entries
// are summed over sessions and trees: the guest has one of each.
func Take(p *bpf.Probes, attached []string, nfs *bpf.NFSProbes, nfsAttached []string) (Snapshot, error) {
	s := Snapshot{Attached: attached, NFSAttached: nfsAttached, Completions: map[uint16]uint64{}}
	hists, err := p.Histograms(nil)
	if err != nil {
		return s, err
	}
	for _, h := range hists {
		s.Completions[h.Command] += h.Count
	}
	fails, err := p.Errors(nil)
	if err != nil {
		return s, err
	}
	byKey := map[[2]uint32]uint64{}
	for _, f := range fails {
		byKey[[2]uint32{uint32(f.Command), f.Status}] += f.Count
	}
	for k, n := range byKey {
		s.Failures = append(s.Failures, Failure{Command: uint16(k[0]), Status: k[1], Count: n})
	}
	inflight, err := p.InFlight(nil)
	if err != nil {
		return s, err
	}
	for _, r := range inflight {
		s.InFlight = append(s.InFlight, Request{SessionID: r.SessionID, MessageID: r.MessageID, Command: r.Command, Comm: cString(r.Comm[:]), StartNs: r.StartNs})
	}
	if s.Counters, err = p.Counters(); err != nil {
		return s, err
	}
	stats, err := p.ProgramStats()
	if err != nil {
		return s, err
	}
	if nfs != nil {
		if err := takeNFS(&s, nfs); err != nil {
			return s, err
		}
		nfsStats, err := nfs.ProgramStats()
		if err != nil {
			return s, err
		}
		maps.Copy(stats, nfsStats)
	}
	s.Programs = map[string]ProgramRuns{}
	for name, st := range stats {
		s.Programs[name] = ProgramRuns{RunTimeNs: uint64(st.Runtime), Runs: st.RunCount, Skipped: st.RecursionMisses}
	}
	return s, nil
}

func takeNFS(s *Snapshot, nfs *bpf.NFSProbes) error {
	hists, err := nfs.Histograms(nil)
	if err != nil {
		return err
	}
	for _, h := range hists {
		s.NFS = append(s.NFS, NFSCount{Client: h.SessionID, Procedure: h.Command, Status: h.Status, Count: h.Count})
	}
	fails, err := nfs.Errors(nil)
	if err != nil {
		return err
	}
	for _, f := range fails {
		s.NFSFailures = append(s.NFSFailures, NFSCount{Client: f.SessionID, Procedure: f.Command, Status: f.Status, Count: f.Count})
	}
	return nil
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// Write stores s as JSON in file.
func (s Snapshot) Write(file string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, data, 0o644)
}

// Read loads a snapshot Write stored.
func Read(file string) (Snapshot, error) {
	var s Snapshot
	data, err := os.ReadFile(file)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("%s: %w", file, err)
	}
	return s, nil
}
