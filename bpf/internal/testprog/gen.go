// Package testprog is what bpf's tests share and production code must not carry: BPF
// programs that only tests use, in an object of their own so that the production
// object carries none of them, and the checks of whether BPF can be loaded here
// (which bpf/bpftest applies too).
package testprog

// Regenerate with `go generate ./bpf/...` (see bpf/gen.go).
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -tags linux -target bpfel testprog testprog.c -- -I../../include -mcpu=v3 -Wall -Werror
