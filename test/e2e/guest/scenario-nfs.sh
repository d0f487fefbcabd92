# shellcheck shell=bash disable=SC2154 # sourced by main.sh after lib.sh (nfs3, nfs4, dir)
# nfs: the same file workload on the NFSv3 and the NFSv4.2 mount (create, write, read, stat,
# list, rename, remove, mkdir, rmdir), with operations that fail: lookups of missing names
# (NFS3ERR_NOENT, NFS4ERR_NOENT) and rmdir of a non-empty directory (NFS3ERR_NOTEMPTY,
# NFS4ERR_NOTEMPTY). Evidence: /proc/self/mountstats before and after (the clients idle at
# both ends, nothing written back later) and the sunrpc trace of the same interval.
workload() {
	local w=$1 i
	mkdir "$w"
	for i in $(seq 1 10); do echo "file $i" >"$w/f$i"; done
	dd if=/dev/zero of="$w/big" bs=64k count=8 status=none
	sync
	stat "$w"/f* >/dev/null
	ls -l "$w" >/dev/null
	drop_caches
	cat "$w"/f* >/dev/null
	dd if="$w/big" of=/dev/null bs=64k status=none
	for i in $(seq 1 5); do mv "$w/f$i" "$w/g$i"; done
	ls "$w" >/dev/null
	# Each name once: the client would answer a repeated one from its negative dentry.
	for i in $(seq 1 10); do stat "$w/missing-$i" >/dev/null 2>&1 && return 1; done
	mkdir -p "$w/full/sub"
	for i in $(seq 1 3); do rmdir "$w/full" 2>/dev/null && return 1; done
	rmdir "$w/full/sub" "$w/full"
	rm "$w"/f* "$w"/g* "$w/big"
	rmdir "$w"
}
trace_start sunrpc/rpc_stats_latency nfs/nfs_xdr_status nfs4/nfs4_xdr_status
nfs_snap before
phase v3
workload "$nfs3/w"
phase v4
workload "$nfs4/w"
phase settle
sync
quiesce
nfs_snap after
trace_stop nfs
