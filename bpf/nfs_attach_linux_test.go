//go:build linux

package bpf

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/linuxdiag/aod/internal/fixtures"
	"github.com/linuxdiag/aod/internal/nfs"
)

// The prototypes the NFS programs assume are those of Debian 6.1's, 6.12's and 7.3's
// modules (their btf_trace_* typedefs, kept in the fixtures), and a different one is
// refused. (Debian 5.10 has no BTF of its modules: the programs do not load there.)
func TestNFSTracepointPrototypes(t *testing.T) {
	for _, k := range []string{"6.1", "6.12", "7.3"} {
		raw, err := os.ReadFile(fixtures.Path("kernel-" + k + "/nfs/sunrpc.btf"))
		if err != nil {
			t.Fatal(err)
		}
		spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		for _, tp := range nfsTracepoints {
			if verified, err := checkProto(spec, tp.name, tp.args); !verified || err != nil {
				t.Errorf("%s %s: verified %v, %v", k, tp.name, verified, err)
			}
		}
		wrong := []protoArg{argPtr, argU32} // rpc_stats_latency with too few arguments
		if _, err := checkProto(spec, "rpc_stats_latency", wrong); err == nil || !strings.Contains(err.Error(), "ptr, int64, int64, int64") {
			t.Errorf("%s: a wrong prototype: %v", k, err)
		}
	}
}

// Attach checks each prototype before attaching, and a required tracepoint that is
// refused leaves nothing attached. (This machine has no sunrpc: attaching fails for
// every tracepoint, so the test drives the refusal paths.)
func TestNFSAttachReportsEachTracepoint(t *testing.T) {
	raw, err := os.ReadFile(fixtures.Path("kernel-6.12/nfs/sunrpc.btf"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	n, err := loadProbes(t, Options{}).LoadNFS(NFSOptions{KernelTypes: spec})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	// A kernel whose rpc_stats_latency lost an argument: refused before attaching.
	var td *btf.Typedef
	if err := spec.TypeByName("btf_trace_rpc_stats_latency", &td); err != nil {
		t.Fatal(err)
	}
	fp := td.Type.(*btf.Pointer).Target.(*btf.FuncProto)
	fp.Params = fp.Params[:len(fp.Params)-1]
	report, err := n.attach(func(string) (*btf.Spec, error) { return spec, nil })
	if err == nil || len(report) != len(nfsTracepoints) || !report[0].Verified || report[0].Attached ||
		!strings.Contains(report[0].Err.Error(), "not the expected") {
		t.Fatalf("report %+v, err %v: want rpc_stats_latency refused for its prototype", report, err)
	}
	// Without BTF nothing is verified; here the tracepoints do not exist.
	report, err = n.attach(func(string) (*btf.Spec, error) { return nil, errors.New("no BTF") })
	if err == nil || report[0].Verified || report[0].Attached || report[0].Err == nil {
		t.Errorf("report %+v, err %v: want rpc_stats_latency unverified and not attached", report, err)
	}
	if len(n.links) != 0 {
		t.Errorf("%d links left", len(n.links))
	}
}

// The loader's copies of the procedure code layout are internal/nfs's.
func TestNFSCodeLayout(t *testing.T) {
	if nfsV4Procedures != int(nfs.V3Base) || nfsOther != int(nfs.Other) {
		t.Errorf("bpf: %d, %d; internal/nfs: %d, %d", nfsV4Procedures, nfsOther, nfs.V3Base, nfs.Other)
	}
}
