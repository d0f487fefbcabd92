// Package testprog holds BPF programs that only tests use, in an object of their own so
// that the production object carries none of them.
package testprog

// Regenerate with `go generate ./bpf/...` (see bpf/gen.go).
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -tags linux -target bpfel testprog testprog.c -- -I../../include -mcpu=v3 -Wall -Werror
