// Command sunrpcbtf writes the test fixture the NFS programs' tests load as kernel
// BTF: the sunrpc structures the programs read (nfs.c), cut down to those fields, at
// the offsets and sizes a real kernel's BTF gives them, and the btf_trace_<name>
// typedefs of the tracepoints they attach to (their prototypes, pointers made void).
// With it the tests relocate the programs exactly as that kernel would, and check the
// prototypes the programs assume, without the kernel or its modules.
//
//	go run ./bpf/internal/sunrpcbtf -vmlinux vmlinux -modules sunrpc.ko,nfs.ko,nfsv4.ko -out testdata/kernel-6.12/nfs/sunrpc.btf
//
// vmlinux is the uncompressed kernel ELF (extracted from the Debian package's vmlinuz),
// the modules are from the same package (uncompressed); or each is the raw BTF the
// running kernel shows in /sys/kernel/btf (the e2e guest keeps them in out/btf/).
package main

import (
	"bytes"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// order is the order the structures are written (and printed) in.
var order = []string{"rpc_task", "rpc_message", "rpc_procinfo", "rpc_clnt", "rpc_xprt", "rb_root", "rpc_rqst", "xdr_stream"}

// tracepoints are the tracepoints nfs.c attaches to.
var tracepoints = []string{"rpc_stats_latency", "rpc_call_rpcerror", "nfs_xdr_status", "nfs4_xdr_status", "rpc_socket_connect",
	"xprt_disconnect_force", "xprt_disconnect_auto", "xprt_create"}

// fields are the members nfs.c reads, by structure.
var fields = map[string][]string{
	"rpc_task":     {"tk_status", "tk_msg", "tk_client", "tk_xprt", "tk_rqstp", "tk_start", "tk_owner", "tk_timeouts"},
	"rpc_message":  {"rpc_proc"},
	"rpc_procinfo": {"p_statidx"},
	"rpc_clnt":     {"cl_clid", "cl_prog", "cl_vers"},
	"rpc_xprt":     {"address_strings", "id", "addr", "recv_queue"},
	"rb_root":      {"rb_node"},
	"rpc_rqst":     {"rq_task", "rq_xid", "rq_ntrans"},
	"xdr_stream":   {"rqst"},
}

func main() {
	vmlinux := flag.String("vmlinux", "", "kernel ELF with .BTF")
	modules := flag.String("modules", "", "comma-separated modules with .BTF: sunrpc.ko, nfs.ko, nfsv4.ko")
	out := flag.String("out", "", "BTF file to write")
	flag.Parse()
	if err := run(*vmlinux, strings.Split(*modules, ","), *out); err != nil {
		fmt.Fprintln(os.Stderr, "sunrpcbtf:", err)
		os.Exit(1)
	}
}

func run(vmlinux string, modules []string, out string) error {
	if vmlinux == "" || len(modules) == 0 || modules[0] == "" || out == "" {
		return errors.New("-vmlinux, -modules and -out are required")
	}
	raw, err := btfSection(vmlinux)
	if err != nil {
		return err
	}
	base, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	var specs []*btf.Spec
	for _, m := range modules {
		if raw, err = btfSection(m); err != nil {
			return err
		}
		spec, err := btf.LoadSplitSpecFromReader(bytes.NewReader(raw), base)
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		specs = append(specs, spec)
	}
	cut := map[string]*btf.Struct{}
	for name := range fields {
		cut[name] = &btf.Struct{Name: name}
	}
	for _, name := range order {
		want := fields[name]
		// Most of them are in the kernel's BTF already (the kernel refers to them).
		var s *btf.Struct
		if err := base.TypeByName(name, &s); err != nil {
			if err := specs[0].TypeByName(name, &s); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		c := cut[name]
		c.Size = s.Size
		for _, w := range want {
			m, err := member(s, w)
			if err != nil {
				return err
			}
			m.Type = reduce(m.Type, cut)
			c.Members = append(c.Members, m)
			fmt.Printf("%s.%s: offset %d bytes, %s\n", name, w, m.Offset.Bytes(), m.Type)
		}
	}
	var b btf.Builder
	for _, name := range order {
		if _, err := b.Add(cut[name]); err != nil {
			return err
		}
	}
	for _, tp := range tracepoints {
		td, err := traceTypedef(specs, tp)
		if err != nil {
			return err
		}
		fmt.Printf("%s: %s\n", td.Name, td.Type)
		if _, err := b.Add(td); err != nil {
			return err
		}
	}
	data, err := b.Marshal(nil, nil)
	if err != nil {
		return err
	}
	return os.WriteFile(out, data, 0o644)
}

// traceTypedef returns a tracepoint's btf_trace_<name> typedef from the module that
// has it, with its pointer parameters made void pointers (only their being pointers
// matters to the check).
func traceTypedef(specs []*btf.Spec, name string) (*btf.Typedef, error) {
	for _, spec := range specs {
		var td *btf.Typedef
		if err := spec.TypeByName("btf_trace_"+name, &td); err != nil {
			continue
		}
		fp, ok := btf.UnderlyingType(td.Type.(*btf.Pointer).Target).(*btf.FuncProto)
		if !ok {
			return nil, fmt.Errorf("btf_trace_%s is not a function pointer", name)
		}
		cut := &btf.FuncProto{Return: fp.Return}
		for _, p := range fp.Params {
			if _, ok := btf.UnderlyingType(p.Type).(*btf.Pointer); ok {
				p.Type = &btf.Pointer{Target: &btf.Void{}}
			}
			cut.Params = append(cut.Params, p)
		}
		return &btf.Typedef{Name: td.Name, Type: &btf.Pointer{Target: cut}}, nil
	}
	return nil, fmt.Errorf("no module has btf_trace_%s", name)
}

// btfSection returns the .BTF section of an ELF file (a kernel has no symbol table
// for btf.LoadSpec to use), or the file itself when it is raw BTF, as a running kernel
// shows it in /sys/kernel/btf/<vmlinux or module>.
func btfSection(path string) ([]byte, error) {
	f, err := elf.Open(path)
	if _, notELF := err.(*elf.FormatError); notELF {
		raw, err := os.ReadFile(path)
		if err == nil && !bytes.HasPrefix(raw, []byte{0x9f, 0xeb}) {
			err = fmt.Errorf("%s is neither ELF nor raw BTF", path)
		}
		return raw, err
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sec := f.Section(".BTF")
	if sec == nil {
		return nil, fmt.Errorf("%s has no .BTF section", path)
	}
	return sec.Data()
}

func member(s *btf.Struct, name string) (btf.Member, error) {
	for _, m := range s.Members {
		if m.Name == name {
			return m, nil
		}
	}
	return btf.Member{}, fmt.Errorf("%s has no member %s", s.Name, name)
}

// reduce replaces pointers to the structures in cut (and those structures embedded)
// by the cut-down versions, so the fixture holds only what the programs read; other
// pointers become void pointers, scalars stay as they are.
func reduce(t btf.Type, cut map[string]*btf.Struct) btf.Type {
	switch v := t.(type) {
	case *btf.Struct:
		if c, ok := cut[v.Name]; ok {
			return c
		}
	case *btf.Pointer:
		if s, ok := btf.UnderlyingType(v.Target).(*btf.Struct); ok {
			if c, ok := cut[s.Name]; ok {
				return &btf.Pointer{Target: c}
			}
		}
		if _, ok := btf.UnderlyingType(v.Target).(*btf.Int); ok {
			return v
		}
		return &btf.Pointer{Target: &btf.Void{}}
	}
	return t
}
