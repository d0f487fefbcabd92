# shellcheck shell=bash disable=SC2154 # sourced by main.sh after lib.sh (mnt, nfs3, nfs4, dir)
# io: failed file operations of a process on the real SMB and NFS mounts, made by
# e2eguest iofail, which checks that every call failed with one errno and writes what it
# saw to io-workload.jsonl (the counts the agent's must equal):
#   - 150 opens of missing names on the SMB share: OPEN ENOENT, over path-miss-burst (100);
#   - 20 exclusive creates of an existing name on the NFSv3 mount: CREATE EEXIST, under
#     create-collision-burst (50): counted, no anomaly;
#   - 5 creates on the NFSv4.2 mount made read-only (a read-only bind remount of that mount
#     alone, as an administrator's remount would do): CREATE EROFS, over severe (3);
#   - 4 O_DIRECT writes on the NFSv3 mount with the server's file system filled from the
#     server side: WRITE ENOSPC (severe);
#   - 4 reads of a file the server removed under an open descriptor of the NFSv3 mount:
#     READ ESTALE (severe).
out_io=$dir/io-workload.jsonl
phase missing
/host/bin/e2eguest iofail missing "$mnt" 150 "$out_io"
phase exists
/host/bin/e2eguest iofail exists "$nfs3" 20 "$out_io"
phase readonly
mount -o remount,bind,ro "$nfs4"
/host/bin/e2eguest iofail create "$nfs4" 5 "$out_io"
mount -o remount,bind,rw "$nfs4"
phase nospc
# Filled on the server, not through the mount: only the workload's writes fail.
dd if=/dev/zero of=/srv/nfs/aod-fill bs=1M status=none 2>/dev/null || true
/host/bin/e2eguest iofail nospc "$nfs3" 4 "$out_io"
rm /srv/nfs/aod-fill
phase stale
/host/bin/e2eguest iofail stale "$nfs3" 4 "$out_io" /srv/nfs
phase settle
sync
quiesce
# Both io anomalies (path-miss-burst and severe) write their bundle before the agent stops.
if [ -n "${bg_pids[aod]:-}" ]; then
	# shellcheck disable=SC2016 # expanded by sh -c
	until_ok 120 sh -c '[ "$(ls /var/log/aod/batches/*_io_error.tar.zst 2>/dev/null | wc -l)" -ge 2 ]'
fi
