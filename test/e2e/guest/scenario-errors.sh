# shellcheck shell=bash disable=SC2154 # sourced by main.sh after lib.sh (mnt, dir)
# errors: reads to end of file (STATUS_END_OF_FILE, normal traffic that must fire nothing), then a
# burst of lookups of missing names (STATUS_OBJECT_NAME_NOT_FOUND). Evidence: request tracepoints
# of both phases.
w=$mnt/errors
trace_start smb3_cmd_enter smb3_cmd_done smb3_cmd_err
snap before
phase setup
mkdir "$w"
dd if=/dev/zero of="$w/small" bs=1k count=10 status=none
quiesce
phase eof
# Direct I/O asks the server for a whole block past the end of the file.
for i in $(seq 1 5); do dd if="$w/small" of=/dev/null bs=64k iflag=direct status=none; done
quiesce
phase missing
for i in $(seq 1 50); do stat "$w/missing-$i" >/dev/null 2>&1 && exit 1; done
quiesce
phase cleanup
rm -r "$w"
quiesce
snap after
trace_stop errors
