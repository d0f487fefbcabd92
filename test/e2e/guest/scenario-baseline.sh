# shellcheck shell=bash disable=SC2154 # sourced by main.sh after lib.sh (mnt, dir)
# baseline: healthy mixed traffic (create, write, read, stat of new names, list, rename, delete).
# Evidence: the cifs request tracepoints and /proc/fs/cifs/Stats over exactly the same interval
# (the client is idle at both ends), so per-command counts can be compared one to one.
trace_start smb3_cmd_enter smb3_cmd_done smb3_cmd_err
snap before
phase workload
w=$mnt/baseline
mkdir "$w"
for i in $(seq 1 20); do echo "file $i" >"$w/f$i"; done
dd if=/dev/zero of="$w/big" bs=64k count=16 status=none
stat "$w"/f* >/dev/null
ls -l "$w" >/dev/null
drop_caches
cat "$w"/f* >/dev/null
dd if="$w/big" of=/dev/null bs=64k status=none
for i in $(seq 1 10); do mv "$w/f$i" "$w/g$i"; done
ls "$w" >/dev/null
rm "$w"/f* "$w"/g* "$w/big"
rmdir "$w"
phase settle
quiesce
snap after
trace_stop baseline
