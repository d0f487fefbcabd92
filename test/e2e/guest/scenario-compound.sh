# shellcheck shell=bash disable=SC2154 # sourced by main.sh after lib.sh (mnt, dir)
# compound: operations the client sends as one compound (CREATE + SET_INFO or QUERY_INFO +
# CLOSE) where a member fails, so the members after it never complete in the trace: the
# first member (stat of a missing name), the middle one (rmdir of a non-empty directory:
# SET_INFO fails with STATUS_DIRECTORY_NOT_EMPTY; rename of a directory onto a non-empty
# one), and unlink and rename of a file this client holds open. Evidence: request
# tracepoints; the client is idle at both ends, so nothing may be left in flight.
w=$mnt/compound
trace_start smb3_cmd_enter smb3_cmd_done smb3_cmd_err
snap before
phase setup
mkdir -p "$w/full/sub" "$w/src"
echo x >"$w/full/f"
echo y >"$w/open"
echo z >"$w/other"
quiesce
phase compound
for i in $(seq 1 5); do rmdir "$w/full" 2>/dev/null && exit 1; done
for i in $(seq 1 5); do stat "$w/missing-$i" >/dev/null 2>&1 && exit 1; done
mv -T "$w/src" "$w/full" 2>/dev/null && exit 1
exec 3<"$w/open"
# Whether the server lets these through while the file is open does not matter here.
mv -f "$w/other" "$w/open" 2>/dev/null || true
rm -f "$w/open" 2>/dev/null || true
exec 3<&-
quiesce
phase cleanup
rm -rf "$w"
quiesce
snap after
trace_stop compound
