# shellcheck shell=bash disable=SC2154 # sourced by main.sh after lib.sh (mnt, dir)
# reconnect: the server goes away and comes back. Evidence: Stats (reconnect counters),
# DebugData and the connection tracepoints around the outage.
trace_start smb3_cmd_enter smb3_cmd_done smb3_cmd_err smb3_reconnect smb3_connect_done smb3_connect_err
snap before
phase stop
smbd_stop
# The client notices the closed socket and marks the connection for reconnect (TCP status
# other than 1, CifsGood).
until_ok 60 grep -qE 'TCP status: [^1 ]' /proc/fs/cifs/DebugData
snap down
phase start
smbd_start
until_ok 60 ls "$mnt"
phase recovered
quiesce
snap after
trace_stop reconnect
# The connection anomaly's bundle: from the kernel's reconnect event at once, or, on a
# kernel without the connection tracepoints (5.10), from the next poll of /proc/net/tcp
# (every watch interval).
bundle_written
