// Package nfsproc parses the NFS client's per-mount statistics in /proc/self/mountstats:
// for each nfs or nfs4 mount the kernel's event and byte counters (nfs_show_stats in
// fs/nfs/super.c), the RPC transport counters (xs_tcp_print_stats and its siblings in
// net/sunrpc/xprtsock.c) and the per-operation RPC counters (rpc_clnt_show_stats in
// net/sunrpc/stats.c). Reading the file asks the kernel for counters it already keeps;
// it never sends anything to the mounts' servers, so a hung server cannot hang the read.
package nfsproc
