// Package bpf loads and attaches aod's SMB request probes (aod.c) and NFS RPC probes
// (nfs.c, Probes.LoadNFS: same ring and counters, maps of their own) and gives user space
// what it needs from them: the ring buffer of slow and failed requests and connection
// events (DecodeEvent), per-(command, session, tree, NTSTATUS) latency histograms and
// error counts summed over CPUs, loss counters, the requests still in flight, and live
// control of thresholds and the tracked failures without reloading the programs.
//
// The kernel side is Linux-only; on other systems Load returns ErrUnsupported, and
// DecodeEvent and the snapshot types still build. README.md documents the map and
// record layout and which kernels carry the tracepoints.
package bpf
