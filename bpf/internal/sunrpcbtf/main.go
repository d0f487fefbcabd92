// Command sunrpcbtf writes the test fixture the NFS programs' tests load as kernel
// BTF: the sunrpc structures the programs read (nfs.c), cut down to those fields, at
// the offsets and sizes a real kernel's BTF gives them. With it the tests relocate the
// programs exactly as that kernel would, without the kernel or its module.
//
//	go run ./bpf/internal/sunrpcbtf -vmlinux vmlinux -module sunrpc.ko -out testdata/kernel-6.12/nfs/sunrpc.btf
//
// vmlinux is the uncompressed kernel ELF (extracted from the Debian package's vmlinuz),
// sunrpc.ko the module from the same package (uncompressed).
package main

import (
	"bytes"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/cilium/ebpf/btf"
)

// order is the order the structures are written (and printed) in.
var order = []string{"rpc_task", "rpc_message", "rpc_procinfo", "rpc_clnt", "rpc_xprt", "rpc_rqst", "xdr_stream"}

// fields are the members nfs.c reads, by structure.
var fields = map[string][]string{
	"rpc_task":     {"tk_status", "tk_msg", "tk_client", "tk_xprt", "tk_rqstp", "tk_start", "tk_owner", "tk_timeouts"},
	"rpc_message":  {"rpc_proc"},
	"rpc_procinfo": {"p_statidx"},
	"rpc_clnt":     {"cl_clid", "cl_prog", "cl_vers"},
	"rpc_xprt":     {"address_strings", "id"},
	"rpc_rqst":     {"rq_task", "rq_xid", "rq_ntrans"},
	"xdr_stream":   {"rqst"},
}

func main() {
	vmlinux := flag.String("vmlinux", "", "kernel ELF with .BTF")
	module := flag.String("module", "", "sunrpc.ko with .BTF")
	out := flag.String("out", "", "BTF file to write")
	flag.Parse()
	if err := run(*vmlinux, *module, *out); err != nil {
		fmt.Fprintln(os.Stderr, "sunrpcbtf:", err)
		os.Exit(1)
	}
}

func run(vmlinux, module, out string) error {
	if vmlinux == "" || module == "" || out == "" {
		return errors.New("-vmlinux, -module and -out are required")
	}
	raw, err := btfSection(vmlinux)
	if err != nil {
		return err
	}
	base, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if raw, err = btfSection(module); err != nil {
		return err
	}
	spec, err := btf.LoadSplitSpecFromReader(bytes.NewReader(raw), base)
	if err != nil {
		return err
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
			if err := spec.TypeByName(name, &s); err != nil {
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
	data, err := b.Marshal(nil, nil)
	if err != nil {
		return err
	}
	return os.WriteFile(out, data, 0o644)
}

// btfSection returns the .BTF section of an ELF file (a kernel has no symbol table
// for btf.LoadSpec to use).
func btfSection(path string) ([]byte, error) {
	f, err := elf.Open(path)
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
