package bpf

// The BPF objects and their Go bindings (aod_bpfel.go/.o, aodfallback_bpfel.go/.o) are
// committed, so building needs no clang; regenerate them with `go generate ./bpf/...`
// (clang, llvm-strip and libbpf-dev's <bpf/bpf_helpers.h>). After changing the bucket
// layout, run `go generate ./internal/latencyhist` first: it writes
// include/aod_buckets.h. Only little-endian targets are built.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -tags linux -target bpfel -type event -type event_kind -type counter aod aod.c -- -I./include -mcpu=v3 -Wall -Werror
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -tags linux -target bpfel -type smb2_hdr aodfallback fallback.c -- -I./include -mcpu=v3 -Wall -Werror
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -tags linux -target bpfel -type nfs_key -type nfs_hist_val -type nfs_reply_status aodnfs nfs.c -- -I./include -mcpu=v3 -Wall -Werror
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -tags linux -target amd64 -type io_syscall -type io_key -type io_mount -type io_path_key -type io_config aodio io.c -- -I./include -mcpu=v3 -Wall -Werror
