# shellcheck shell=bash disable=SC2154 # sourced by main.sh after lib.sh (nfs4, dir)
# nfserrors: a burst of lookups of missing names on the NFSv4.2 mount (NFS4ERR_NOENT, which the
# lookup_storm rule tracks; the test lowers its acceptable_count). Evidence: rpc_stats_latency
# and the NFS status of each failed reply (nfs4_xdr_status), mountstats.
w=$nfs4/errors
trace_start sunrpc/rpc_stats_latency nfs4/nfs4_xdr_status
nfs_snap before
phase setup
mkdir "$w"
quiesce
phase missing
# Each name once: a repeated one is answered from the client's negative dentry.
for i in $(seq 1 50); do stat "$w/missing-$i" >/dev/null 2>&1 && exit 1; done
quiesce
phase cleanup
rmdir "$w"
quiesce
nfs_snap after
trace_stop nfserrors
