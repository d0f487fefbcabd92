//go:build e2e

package e2e

// The nfs scenario: the guest's kernel NFS client on an NFSv3 and an NFSv4.2 mount of the
// guest's own kernel NFS server, checked against the client's own counters,
// /proc/self/mountstats.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/linuxdiag/aod/internal/nfs"
	"github.com/linuxdiag/aod/internal/nfsproc"
	"github.com/linuxdiag/aod/test/e2e/internal/guestprobe"
)

// The guest's NFS mounts (guest/lib.sh).
const (
	nfs3Mount = "/mnt/n3"
	nfs4Mount = "/mnt/n4"
)

const (
	nfsErrNoent    = 2  // NFS3ERR_NOENT, NFS4ERR_NOENT
	nfsErrNotEmpty = 66 // NFS3ERR_NOTEMPTY, NFS4ERR_NOTEMPTY
)

// nfsVersion is one NFS mount of the scenario and what was counted for it.
type nfsVersion struct {
	mount         string
	before, after *nfsproc.Mount
	codes         []uint16 // procedure code of each op of the mount, in the kernel's order
}

// procedureVersion returns the NFS version whose procedure codes (internal/nfs) hold code: 3 or 4,
// 0 for codes of neither (NFSACL, other).
func procedureVersion(code uint16) int {
	switch {
	case code < nfs.V3Base:
		return 4
	case code < nfs.ACL3Base:
		return 3
	}
	return 0
}

func readMountstats(t *testing.T, dir, name string) map[string]*nfsproc.Mount {
	t.Helper()
	f := filepath.Join(dir, "mountstats."+name)
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	mounts, err := nfsproc.Parse(f, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	byPoint := map[string]*nfsproc.Mount{}
	for i := range mounts {
		byPoint[mounts[i].MountPoint] = &mounts[i]
	}
	return byPoint
}

// loadNFS reads the nfs scenario's mountstats and finds its two mounts in them, with the
// procedure code of each op: NFSv3 procedure p is V3Base+p, an NFSv4 op is named by the
// kernel's order (nfs.Canonical), as the probes map it.
func loadNFS(t *testing.T, dir string) map[int]*nfsVersion {
	t.Helper()
	before, after := readMountstats(t, dir, "before"), readMountstats(t, dir, "after")
	out := map[int]*nfsVersion{}
	for vers, point := range map[int]string{3: nfs3Mount, 4: nfs4Mount} {
		v := &nfsVersion{mount: point, before: before[point], after: after[point]}
		if v.before == nil || v.after == nil {
			t.Fatalf("mountstats holds no NFS mount at %s (before %v, after %v)", point, v.before != nil, v.after != nil)
		}
		if v.after.Version != uint32(vers) {
			t.Fatalf("%s is NFS version %d, want %d", point, v.after.Version, vers)
		}
		var names []string
		for _, op := range v.after.Ops {
			names = append(names, op.Name)
		}
		if vers == 4 {
			v.codes = nfs.Canonical(names)
		} else {
			for i := range names {
				v.codes = append(v.codes, nfs.V3Base+uint16(i))
			}
		}
		out[vers] = v
	}
	return out
}

// opDelta returns the named op's counters over the scenario: after minus before.
func (v *nfsVersion) opDelta(t *testing.T, i int) (ops, errs uint64) {
	t.Helper()
	a := v.after.Ops[i]
	j := slices.IndexFunc(v.before.Ops, func(o nfsproc.Op) bool { return o.Name == a.Name })
	if j < 0 {
		t.Fatalf("%s: op %s is in mountstats after the workload but not before", v.mount, a.Name)
	}
	b := v.before.Ops[j]
	if !a.HasErrors || !b.HasErrors {
		t.Fatalf("%s: op %s has no errors column (Linux 5.3 and later print it)", v.mount, a.Name)
	}
	return a.Ops - b.Ops, a.Errors - b.Errors
}

// checkNFS: per mount and per operation, rpc_stats_latency fired once per RPC the mount's
// mountstats counted over the same interval, aod's NFS programs measured as many RPCs, and
// as many failures as mountstats counted errors; the RPC
// clients the programs saw map to the mounts by NFS version (their procedure codes are
// disjoint); the lookups of missing names and the rmdirs of a non-empty directory failed
// with the NFS status each version gives them.
func checkNFS(t *testing.T, s *nfsScenario) {
	versions, dir := s.versions, s.dir
	traced, err := s.trace.rpcCompletions()
	if err != nil {
		t.Fatal(err)
	}
	p, err := guestprobe.Read(filepath.Join(dir, "probe.json"))
	if err != nil {
		t.Fatalf("no probe snapshot (log: %s): %v", filepath.Join(dir, "probe.log"), err)
	}
	// A kernel without the BTF of its modules (before 5.11) cannot relocate the programs'
	// reads of sunrpc's structures: the kernel's own evidence is still compared.
	progs := p.NFSError == "" || !s.kernel.noModuleBTF
	s.programs = progs
	if progs {
		want := []string{"rpc_stats_latency", "rpc_call_rpcerror", "nfs_xdr_status", "nfs4_xdr_status", "rpc_socket_connect",
			"xprt_disconnect_force", "xprt_disconnect_auto", "xprt_create"}
		if !slices.Equal(p.NFSAttached, want) {
			t.Errorf("the NFS programs attached to %v, want %v (%s)", p.NFSAttached, want, p.NFSError)
		}
		s.kernel.note(t, "NFS RPCs: mountstats ops delta vs rpc_stats_latency (the premise) vs aod's NFS programs; failures vs mountstats errors")
	} else {
		s.kernel.note(t, "NFS RPCs: mountstats ops delta vs rpc_stats_latency (the premise) only: aod's NFS programs do not load on this kernel, it has no BTF of its modules (sunrpc, nfs: CONFIG_DEBUG_INFO_BTF_MODULES, 5.11) to relocate their reads of struct rpc_task against (%s)", firstLine(p.NFSError))
	}
	type key struct {
		code   uint16
		status uint32
	}
	completions := map[uint16]uint64{}
	failures := map[key]uint64{}
	failed := map[uint16]uint64{}
	clients := map[int][]uint64{} // RPC client ids by the version of their procedures
	for _, c := range p.NFS {
		vers := procedureVersion(c.Procedure)
		if vers == 0 {
			t.Errorf("client %d: the programs measured %d RPCs of %s, neither NFSv3 nor NFSv4", c.Client, c.Count, nfs.Command(c.Procedure))
		}
		for v, ids := range clients {
			if v != vers && slices.Contains(ids, c.Client) {
				t.Errorf("client %d made RPCs of NFSv%d and NFSv%d", c.Client, v, vers)
			}
		}
		if !slices.Contains(clients[vers], c.Client) {
			clients[vers] = append(clients[vers], c.Client)
		}
		completions[c.Procedure] += c.Count
	}
	for _, f := range p.NFSFailures {
		failures[key{f.Procedure, f.Status}] += f.Count
		failed[f.Procedure] += f.Count
	}
	sk := nfsSkipsOf(func(prog string) uint64 { return p.Programs[prog].Skipped })
	gotOps, wantOps, gotErrs, wantErrs := map[string]float64{}, map[string]float64{}, map[string]float64{}, map[string]float64{}
	for _, vers := range []int{3, 4} {
		v := versions[vers]
		var table strings.Builder
		fmt.Fprintf(&table, "%-22s %10s %10s %10s %10s %10s\n", "op", "mountstats", "trace", "programs", "ms errors", "prog fails")
		program := fmt.Sprintf("nfsv%d", vers)
		var total uint64
		for i, op := range v.after.Ops {
			code := v.codes[i]
			ops, errs := v.opDelta(t, i)
			total += ops
			rpcs := traced[rpcOp{program, op.Name}]
			delete(traced, rpcOp{program, op.Name})
			if ops != 0 || rpcs != 0 || completions[code] != 0 || errs != 0 || failed[code] != 0 {
				fmt.Fprintf(&table, "%-22s %10d %10d %10d %10d %10d\n", op.Name, ops, rpcs, completions[code], errs, failed[code])
			}
			// The premise: the kernel's tracepoint fires once per RPC mountstats counts.
			if uint64(rpcs) != ops {
				t.Errorf("%s %s: rpc_stats_latency fired %d times, mountstats counted %d RPCs", v.mount, op.Name, rpcs, ops)
			}
			if code == nfs.Other {
				if ops != 0 {
					t.Errorf("%s: %d %s RPCs of an op the procedure table does not know", v.mount, ops, op.Name)
				}
				continue
			}
			if !progs {
				continue
			}
			name := v.mount + " " + op.Name
			gotOps[name], wantOps[name] = float64(completions[code]), float64(ops)
			gotErrs[name], wantErrs[name] = float64(failed[code]), float64(errs)
			// Accounted for: what is left must be nothing.
			delete(completions, code)
			delete(failed, code)
		}
		t.Logf("NFSv%d (%s, RPC clients %v): RPCs per op over the scenario, mountstats delta, trace and aod's programs:\n%s", vers, v.mount, clients[vers], table.String())
		if total == 0 {
			t.Errorf("%s: the workload sent no RPC", v.mount)
		}
	}
	if progs {
		sk.check(t, s.kernel, "the programs", gotOps, wantOps, gotErrs, wantErrs)
	}
	for op, n := range traced {
		t.Errorf("rpc_stats_latency fired %d times for %s %s, which no mount's mountstats lists", n, op.Program, op.Procedure)
	}
	for code, n := range completions {
		t.Errorf("the programs measured %d RPCs of %s, which no mount's mountstats lists", n, nfs.Command(code))
	}
	for code, n := range failed {
		t.Errorf("the programs counted %d failures of %s, which no mount's mountstats lists", n, nfs.Command(code))
	}
	if !progs {
		return
	}
	var fails []string
	for k, n := range failures {
		fails = append(fails, fmt.Sprintf("%s %s: %d", nfs.Command(k.code), nfs.Status(k.status), n))
	}
	slices.Sort(fails)
	t.Logf("failures the programs counted, by procedure and status:\n%s", strings.Join(fails, "\n"))
	for _, w := range []struct {
		code, status uint16
		atLeast      uint64
		why          string
	}{
		{nfs.V3Lookup, nfsErrNoent, 10, "lookups of missing names"},
		{nfs.V4Lookup, nfsErrNoent, 10, "lookups of missing names"},
		{nfs.V3Rmdir, nfsErrNotEmpty, 3, "rmdir of a non-empty directory"},
		{nfs.V4Remove, nfsErrNotEmpty, 3, "rmdir of a non-empty directory"},
	} {
		if got := failures[key{w.code, uint32(w.status)}]; got < w.atLeast {
			t.Errorf("%s: the programs counted %d failures with %s, want at least %d (%s)", nfs.Command(w.code), got, nfs.Status(uint32(w.status)), w.atLeast, w.why)
		}
	}
	for k, n := range failures {
		if k.status != nfsErrNoent && k.status != nfsErrNotEmpty {
			t.Errorf("%s: %d failures with %s on a workload that fails only with NOENT and NOTEMPTY", nfs.Command(k.code), n, nfs.Status(k.status))
		}
	}
	c := p.Counters
	if c.RingReserveFailures != 0 || c.HistogramMapFull != 0 || c.ErrorMapFull != 0 {
		t.Errorf("the probes lost RPCs: %+v", c)
	}
}

const (
	mountstatsRequests = "nfs_client_mountstats_rpc_requests_total"
	mountstatsErrors   = "nfs_client_mountstats_rpc_errors_total"
	nfsDurationMetric  = "nfs_client_operation_duration_seconds"
	nfsErrorsMetric    = "nfs_client_errors_total"
)

// checkAgentNFSProbes: the agent's own NFS probes (its histograms and error counts, in its
// final /metrics) measured, per procedure, as many RPCs and failures as the two mounts'
// mountstats counted over the scenario (the client idle from before the agent started
// to the before snapshot, and from the after snapshot on), and named the mounts.
func checkAgentNFSProbes(t *testing.T, versions map[int]*nfsVersion, a *agentRun) {
	fams := a.metrics["final"]
	got, gotFail := map[string]float64{}, map[string]float64{}
	shares := map[string]bool{}
	ops := map[string]bool{} // "version procedure" of every op the mounts' mountstats list
	for vers, v := range versions {
		for _, op := range v.after.Ops {
			ops[fmt.Sprint(vers, " ", op.Name)] = true
		}
	}
	for _, s := range series(fams, nfsDurationMetric) {
		got[s.labels["nfs_command"]] += s.value
		if s.labels["nfs_share"] != "" {
			shares[s.labels["nfs_share"]] = true
		}
		// The series joins mountstats' on the RPC's name.
		if op := s.labels["onc_rpc_version"] + " " + s.labels["onc_rpc_procedure_name"]; s.labels["rpc_system"] != "onc_rpc" || !ops[op] {
			t.Errorf("%s series %v: its RPC (%q) is not an operation of the mounts' mountstats", nfsDurationMetric, s.labels, op)
		}
	}
	for _, s := range series(fams, nfsErrorsMetric) {
		gotFail[s.labels["nfs_command"]] += s.value
	}
	want, wantFail := map[string]float64{}, map[string]float64{}
	for _, v := range versions {
		for i := range v.after.Ops {
			ops, errs := v.opDelta(t, i)
			name := nfs.Command(v.codes[i]).String()
			if ops != 0 {
				want[name] += float64(ops)
			}
			if errs != 0 {
				wantFail[name] += float64(errs)
			}
		}
	}
	if len(want) == 0 {
		t.Fatal("mountstats counted no NFS RPC over the scenario")
	}
	skipped := runsSkipped(fams)
	nfsSkipsOf(func(prog string) uint64 { return skipped[prog] }).check(t, nil, "the agent", got, want, gotFail, wantFail)
	if !shares["/srv/nfs"] {
		t.Errorf("no %s series names the export /srv/nfs (shares: %v)", nfsDurationMetric, shares)
	}
	t.Logf("agent's NFS probes: %v RPCs over %d procedures, %v failures, against mountstats", total(got), len(got), total(gotFail))
}

// checkAgentNFS: the agent's mountstats metrics, in its final /metrics (the clients idle
// since the after snapshot), equal the mountstats the guest kept after the workload, per
// mount and op: requests and errors.
func checkAgentNFS(t *testing.T, versions map[int]*nfsVersion, a *agentRun) {
	fams := a.metrics["final"]
	for _, name := range []string{mountstatsRequests, mountstatsErrors} {
		got := map[[2]string]float64{} // by mount point and op
		for _, s := range series(fams, name) {
			got[[2]string{s.labels["system_filesystem_mountpoint"], s.labels["onc_rpc_procedure_name"]}] += s.value
		}
		if len(got) == 0 {
			t.Errorf("the agent's final /metrics has no %s", name)
			continue
		}
		compared := 0
		for _, v := range versions {
			for _, op := range v.after.Ops {
				want := op.Ops
				if name == mountstatsErrors {
					want = op.Errors
				}
				k := [2]string{v.mount, op.Name}
				g, ok := got[k]
				if !ok && want == 0 {
					continue
				}
				compared++
				if g != float64(want) {
					t.Errorf("%s %s %s: the agent exports %v, mountstats after the workload %d", name, v.mount, op.Name, g, want)
				}
			}
		}
		t.Logf("%s: %d series of the two mounts compared with mountstats", name, compared)
	}
}

// nfsSkips are the runs of the NFS programs the kernel skipped because the program was
// already running on that CPU (preemptible tracepoint programs, Linux 7.0+; see
// requestSkips): a skipped rpc_stats_latency run loses an RPC, a skipped status run (the
// NFS status or the RPC error it would have noted) can lose the failure of one.
type nfsSkips struct{ rpcs, statuses uint64 }

func nfsSkipsOf(skipped func(program string) uint64) nfsSkips {
	return nfsSkips{
		rpcs:     skipped("aod_rpc_stats"),
		statuses: skipped("aod_rpc_error") + skipped("aod_nfs_xdr_status") + skipped("aod_nfs4_xdr_status"),
	}
}

// check compares RPCs and failures counted (got) with mountstats' (want), per mount and op
// (or procedure): never more, and fewer only by what the skipped runs lost: exactly one RPC
// per skipped rpc_stats_latency run, at most one failure per skipped run. k, when set,
// notes any skip in the kernel's ledger.
func (sk nfsSkips) check(t *testing.T, k *kernelRun, who string, gotOps, wantOps, gotErrs, wantErrs map[string]float64) {
	t.Helper()
	lossy := sk != (nfsSkips{})
	short := shortfall(t, who, "RPCs", "mountstats counted", gotOps, wantOps, sk.rpcs != 0)
	shortErrs := shortfall(t, who, "failures", "mountstats errors", gotErrs, wantErrs, lossy)
	if short != float64(sk.rpcs) || shortErrs > float64(sk.rpcs+sk.statuses) {
		t.Errorf("%s counted %v RPCs and %v failures fewer than mountstats; the kernel skipped %d runs on rpc_stats_latency and %d on the status tracepoints", who, short, shortErrs, sk.rpcs, sk.statuses)
	}
	if lossy && k != nil {
		k.note(t, "%s: the kernel skipped %d rpc_stats_latency and %d status runs of the NFS programs (preempted): %v RPCs and %v failures lost, each reported", who, sk.rpcs, sk.statuses, short, shortErrs)
	}
}
