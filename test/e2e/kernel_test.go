//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// kernelRun is what one guest kernel offers the checks, and the record of what each
// scenario was checked against on it: no check is left out without saying so.
type kernelRun struct {
	name    string              // as E2E_KERNELS names it: 5.10, 6.1, 6.12, newest
	release string              // uname -r
	cifs    map[string][]string // its cifs tracepoints and their fields (formats-cifs.txt)
	// noModuleBTF: the kernel has no BTF of its modules (/sys/kernel/btf/sunrpc), which
	// aod's NFS programs need (5.10).
	noModuleBTF bool
	// nfsUnavailable says why the guest has no NFS server, when it has none.
	nfsUnavailable string
	ledger         []string
}

// readKernel reads the guest's tracepoint formats from its run folder.
func readKernel(t *testing.T, name, out string) *kernelRun {
	t.Helper()
	k := &kernelRun{name: name}
	rel, _ := os.ReadFile(filepath.Join(out, "kernel-release"))
	k.release = strings.TrimSpace(string(rel))
	data, err := os.ReadFile(filepath.Join(out, "formats-cifs.txt"))
	if err != nil {
		t.Fatalf("no cifs tracepoint formats from the guest: %v", err)
	}
	if k.cifs, err = parseFormats(data); err != nil {
		t.Fatalf("formats-cifs.txt: %v", err)
	}
	_, err = os.Stat(filepath.Join(out, "btf", "sunrpc"))
	k.noModuleBTF = os.IsNotExist(err)
	if data, err := os.ReadFile(filepath.Join(out, "nfs-unavailable")); err == nil {
		k.nfsUnavailable = strings.TrimSpace(string(data))
	}
	return k
}

// note records, for the kernel's summary, what a scenario checked against what (or why
// it could not).
func (k *kernelRun) note(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf("%-13s %s", filepath.Base(t.Name())+":", fmt.Sprintf(format, args...))
	k.ledger = append(k.ledger, line)
	t.Log(line)
}

// summary logs, at the end of a kernel's run, every scenario's checks on it.
func (k *kernelRun) summary(t *testing.T) {
	t.Helper()
	t.Logf("kernel %s (%s): what each scenario was checked against\n%s", k.name, k.release, strings.Join(k.ledger, "\n"))
}

// aodTracepoints are the cifs tracepoints aod's programs attach to, with the fields (in
// TP_PROTO order) of the argument list they read (fs/smb/client/trace.h; bpf/probes_linux.go).
var aodTracepoints = []struct {
	name   string
	fields []string
}{
	{"smb3_cmd_enter", []string{"tid", "sesid", "cmd", "mid"}},
	{"smb3_cmd_done", []string{"tid", "sesid", "cmd", "mid"}},
	{"smb3_cmd_err", []string{"tid", "sesid", "cmd", "mid", "status", "rc"}},
	{"smb3_reconnect", []string{"currmid", "conn_id", "hostname"}},
	{"smb3_connect_done", []string{"hostname", "conn_id", "dst_addr"}},
	{"smb3_connect_err", []string{"hostname", "conn_id", "dst_addr", "rc"}},
}

// wantAttached returns the cifs tracepoints aod's programs can attach to on this kernel
// (those it has with the argument list the programs read), in the order the probe
// reports them, with the fallback's hooks in place of the request tracepoints when it is
// forced; and, for the record, those it cannot, with the reason.
func (k *kernelRun) wantAttached(fallback bool) (want []string, missing []string) {
	for _, tp := range aodTracepoints {
		fields, ok := k.cifs[tp.name]
		request := strings.HasPrefix(tp.name, "smb3_cmd_")
		switch {
		case request && fallback:
		case !ok:
			missing = append(missing, tp.name+" (not in this kernel)")
		case !slices.Equal(fields, tp.fields):
			missing = append(missing, fmt.Sprintf("%s (this kernel's arguments are (%s), the program reads (%s))", tp.name, strings.Join(fields, ", "), strings.Join(tp.fields, ", ")))
		default:
			want = append(want, tp.name)
		}
	}
	if fallback {
		want = append(want, "fexit/smb2_mid_entry_alloc", "fexit/map_smb2_to_linux_error")
	}
	return want, missing
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
