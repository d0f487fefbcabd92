# shellcheck shell=bash disable=SC2154 # sourced by main.sh after lib.sh (nfs4, dir)
# nfslatency: as latency, on the NFSv4.2 mount: a small-RPC workload without 50 ms of netem
# delay on loopback, then with it (both directions, so about +100 ms per round trip). The first
# delayed round fires the agent's NFS latency anomaly; the second, run once the agent's bundle is
# written, is the one the latencies are compared on. Evidence: rpc_stats_latency (one per RPC,
# with the kernel's execute time) told apart by the phase marks, and the agent's /metrics at the
# edges of the compared phases.
w=$nfs4/latency
small_rpcs() {
	local i
	for i in $(seq 1 5); do
		# Each name once: a repeated one is answered from the client's negative dentry.
		stat "$w/absent-$1-$i" >/dev/null 2>&1 && return 1
		echo "more $i" >>"$w/f$i"
	done
	drop_caches
	cat "$w"/f* >/dev/null
}
trace_start sunrpc/rpc_stats_latency
nfs_snap before
phase setup
mkdir "$w"
for i in $(seq 1 5); do echo "file $i" >"$w/f$i"; done
quiesce
metrics_snap clean-start
phase clean
small_rpcs clean
quiesce
metrics_snap clean-end
phase delayed
tc qdisc add dev lo root netem delay 50ms
small_rpcs delayed
quiesce
bundle_written
quiesce
metrics_snap measured-start
phase measured
small_rpcs measured
quiesce
metrics_snap measured-end
tc qdisc del dev lo root
phase restored
rm -r "$w"
quiesce
nfs_snap after
trace_stop nfslatency
