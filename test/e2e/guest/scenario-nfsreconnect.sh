# shellcheck shell=bash disable=SC2154 # sourced by main.sh after lib.sh (nfs3, nfs4, dir)
# nfsreconnect: the NFS server stops (nfsd's threads to 0 closes its connections) and starts
# again; then each mount sends an RPC, which reconnects its transport. Evidence: mountstats
# (each transport's connect count), the kernel's forced disconnects of the transports
# (xprt_disconnect_force: the server closed them) and their connects (rpc_socket_connect).
trace_start sunrpc/rpc_socket_connect sunrpc/xprt_disconnect_force sunrpc/rpc_stats_latency
nfs_snap before
phase stop
nfsd_stop
# The client closes its side once the server has closed the connection.
until_ok 60 sh -c "! ss -Htn state established '( dport = :2049 )' | grep -q ."
phase dropped
nfs_snap down
nfsd_threads
phase start
# A hard mount retries until the server answers: each create reconnects its mount's transport.
touch "$nfs3/after-restart-v3" "$nfs4/after-restart-v4"
rm "$nfs3/after-restart-v3" "$nfs4/after-restart-v4"
phase recovered
quiesce
nfs_snap after
trace_stop nfsreconnect
