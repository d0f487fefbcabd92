# shellcheck shell=bash disable=SC2154 # sourced by main.sh after lib.sh (mnt, dir)
# latency: the same small-request workload without 50 ms of netem delay on loopback, then with
# it (both directions, so about +100 ms per round trip). The first delayed round fires the
# agent's latency anomaly; the second, measured once the agent's bundle is written (its actions
# load the guest), is the one the latencies are compared on. Evidence: request tracepoints
# told apart by the phase marks, and the agent's /metrics at the edges of the compared phases.
w=$mnt/latency
trace_start smb3_cmd_enter smb3_cmd_done smb3_cmd_err
snap before
phase setup
mkdir "$w"
for i in $(seq 1 5); do echo "file $i" >"$w/f$i"; done
quiesce
metrics_snap clean-start
phase clean
small_requests "$w" clean
quiesce
metrics_snap clean-end
phase delayed
tc qdisc add dev lo root netem delay 50ms
small_requests "$w" delayed
quiesce
bundle_written
quiesce
metrics_snap measured-start
phase measured
small_requests "$w" measured
quiesce
metrics_snap measured-end
tc qdisc del dev lo root
phase restored
rm -r "$w"
quiesce
snap after
trace_stop latency
