# shellcheck shell=bash disable=SC2154 # sourced by main.sh after lib.sh (nfs3, nfs4, dir)
# nfsidle: the client closes a transport idle for five minutes (sunrpc's idle timer) and the
# next RPC reopens it: everyday traffic, which must fire nothing. Evidence: the transports'
# disconnects (xprt_disconnect_auto first: the client's close) and connects. Not in the
# default set: it waits over five minutes (E2E_SCENARIOS=nfsidle).
trace_start sunrpc/rpc_socket_connect sunrpc/xprt_disconnect_auto sunrpc/xprt_disconnect_force sunrpc/rpc_stats_latency
nfs_snap before
open=$(ss -Htn state established '( dport = :2049 )' | wc -l)
phase idle
# NFSv4 renews its lease, so its transport may never be idle; NFSv3's is.
until_ok 480 sh -c "[ \$(ss -Htn state established '( dport = :2049 )' | wc -l) -lt $open ]"
phase closed
touch "$nfs3/after-idle-v3" "$nfs4/after-idle-v4"
rm "$nfs3/after-idle-v3" "$nfs4/after-idle-v4"
phase reopened
quiesce
nfs_snap after
trace_stop nfsidle
