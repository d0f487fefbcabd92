package main

// The yardstick probes' object and bindings (yardsticks_bpfel.go/.o) are committed,
// like bpf/'s; regenerate with `go generate ./bench` (see bpf/gen.go for the tools).
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -tags linux -target bpfel -go-package main -type req_key -type hist_val yardsticks yardsticks.c -- -I../bpf/include -mcpu=v3 -Wall -Werror
