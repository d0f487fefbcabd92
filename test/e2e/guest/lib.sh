# shellcheck shell=bash disable=SC2154 # dir is set by main.sh for each scenario
# Helpers for the scenario scripts in the e2e guest (sourced by main.sh). Scenarios only produce
# evidence under $dir; the host reads it and asserts.

mnt=/mnt/smb
nfs3=/mnt/n3 # NFSv3 mount of the guest's own NFS server
nfs4=/mnt/n4 # NFSv4.2 mount of the same export
tracing=/sys/kernel/tracing
metrics_url=http://127.0.0.1:9464/metrics

# now prints the guest's uptime in seconds: CLOCK_BOOTTIME, which is CLOCK_MONOTONIC (the clock of
# the trace timestamps) in a guest that never suspends.
now() { cut -d' ' -f1 /proc/uptime; }

# phase NAME records when a part of a scenario starts (uptime and wall clock), so the host can
# tell which part an event or an anomaly belongs to.
phase() { echo "$1 $(now) $(date +%s.%N)" >>"$dir/phases"; }

# metrics_snap NAME keeps the agent's /metrics as $dir/metrics.NAME, when the agent runs. Call
# it with the client idle, so the agent's last collection holds all the traffic.
metrics_snap() {
	[ -n "${bg_pids[aod]:-}" ] || return 0
	/host/bin/e2eguest scrape "$metrics_url" >"$dir/metrics.$1"
}

# bundle_written waits, when the agent runs, until it has written a bundle (at most 120 s).
bundle_written() {
	[ -n "${bg_pids[aod]:-}" ] || return 0
	until_ok 120 sh -c 'ls /var/log/aod/batches/*.tar.zst >/dev/null'
}

# snap NAME keeps the kernel's own view of the client: /proc/fs/cifs/Stats and DebugData, and
# the TCP connections (/proc/net/tcp: the one to port 445 shows a reconnect where no connection
# tracepoint does).
snap() {
	cat /proc/fs/cifs/Stats >"$dir/Stats.$1"
	cat /proc/fs/cifs/DebugData >"$dir/DebugData.$1"
	cat /proc/net/tcp >"$dir/tcp.$1"
}

# nfs_snap NAME keeps the NFS client's own view of its mounts: /proc/self/mountstats.
nfs_snap() { cat /proc/self/mountstats >"$dir/mountstats.$1"; }

# quiesce waits until the clients are idle: no SMB request in flight, and Stats and the NFS
# mounts' counters in mountstats unchanged for two seconds (SMB's deferred closes are sent about
# a second after the last close). The mounts' age and their transports' idle time, which tick
# with the clock, are left out. It gives up after 60 s.
quiesce() {
	local prev="" cur deadline=$((SECONDS + 60))
	while [ $SECONDS -lt $deadline ]; do
		cur=$(cat /proc/fs/cifs/Stats; grep -Ev '^[[:space:]]*(age|xprt):' /proc/self/mountstats)
		if [ "$cur" = "$prev" ] && grep -q '^Operations (MIDs): 0$' <<<"$cur"; then
			return 0
		fi
		prev=$cur
		sleep 2
	done
	echo "quiesce: SMB or NFS traffic did not stop within 60 s" >&2
	return 1
}

# trace_start EVENT...: records the given tracepoints into a fresh ring buffer: cifs's by name,
# others as GROUP/NAME (sunrpc/rpc_stats_latency). A tracepoint the kernel does not have (5.10
# has no smb3_connect_done) is left out and named in $dir/trace.missing, for the host to say
# what it could not check.
trace_start() {
	echo 0 >"$tracing/tracing_on"
	echo 8192 >"$tracing/buffer_size_kb"
	# Timestamps on CLOCK_MONOTONIC, the clock of /proc/uptime and of the phase marks.
	echo mono >"$tracing/trace_clock"
	echo >"$tracing/trace"
	echo 0 >"$tracing/events/enable"
	local e
	for e in "$@"; do
		[[ $e == */* ]] || e=cifs/$e
		if [ ! -e "$tracing/events/$e/enable" ]; then
			echo "${e#*/}" >>"$dir/trace.missing"
			continue
		fi
		echo 1 >"$tracing/events/$e/enable"
	done
	echo 1 >"$tracing/tracing_on"
}

# trace_stop NAME: stops recording and keeps the trace as $dir/trace.NAME.
trace_stop() {
	echo 0 >"$tracing/tracing_on"
	cat "$tracing/trace" >"$dir/trace.$1"
	echo 0 >"$tracing/events/enable"
}

# drop_caches makes the next reads go to the server instead of the page cache.
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# small_requests DIR TAG: a few small SMB requests of each kind on the files f1..f5 in DIR:
# lookups (of names that exist and, tagged with TAG, of names that do not), appends, and reads
# past the page cache.
small_requests() {
	local i
	for i in $(seq 1 5); do
		stat "$1/f$i" >/dev/null
		stat "$1/absent-$2-$i" >/dev/null 2>&1 || true
		echo "more $i" >>"$1/f$i"
	done
	drop_caches
	cat "$1"/f* >/dev/null
}

# until_ok SECONDS CMD...: runs CMD until it succeeds, for at most SECONDS.
until_ok() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" 2>/dev/null; do
		[ $SECONDS -lt $deadline ] || { echo "until_ok: '$*' still failing" >&2; return 1; }
		sleep 0.5
	done
}

smbd_start() {
	smbd --daemon || return 1
	until_ok 30 sh -c "ss -Hltn 'sport = :445' | grep -q ."
}

smbd_stop() {
	local pids
	pids=$(pidof smbd) || return 0
	# shellcheck disable=SC2086 # one argument per pid
	kill $pids
	until_ok 30 sh -c '! pidof smbd >/dev/null'
}

mount_share() {
	mount -t cifs //127.0.0.1/share "$mnt" -o vers=3.1.1,username=aod,password=aod-e2e
}

# nfsd_start starts the kernel NFS server on loopback, exporting /srv/nfs (image/exports), a
# tmpfs of its own. The NFSv4 lease is the longest nfsd allows (an hour), so the client sends
# no lease renewal of its own while a test runs (it renews after two thirds of a lease without
# traffic), and the grace period that follows a start is ended at once: no client has state to
# reclaim, and during it the server refuses OPENs. Where nfsd cannot end it (no client tracker:
# Debian's 7.x is built without the legacy one, and no nfsdcld runs here), it lasts the
# shortest grace time nfsd allows, 10 s, and the threads are started once it is over.
nfsd_start() {
	mount -t tmpfs -o size=64m nfs /srv/nfs || return 1
	mkdir -p /run/rpcbind /var/lib/nfs/v4recovery
	rpcbind || return 1
	mount -t nfsd nfsd /proc/fs/nfsd || return 1
	echo 3600 >/proc/fs/nfsd/nfsv4leasetime || return 1
	echo 10 >/proc/fs/nfsd/nfsv4gracetime || return 1
	exportfs -r || return 1
	rpc.mountd || return 1
	nfsd_threads
}

# nfsd_stop stops the NFS server's threads, which closes every connection to it; the export
# and its files stay.
nfsd_stop() {
	rpc.nfsd 0 || return 1
	until_ok 30 sh -c "! ss -Hltn 'sport = :2049' | grep -q ."
}

# nfsd_threads starts the server's threads (again after nfsd_stop), and ends the grace period
# that follows, or waits for its end (v4_end_grace reads Y once it is over).
nfsd_threads() {
	rpc.nfsd 4 || return 1
	echo Y >/proc/fs/nfsd/v4_end_grace 2>/dev/null || until_ok 60 nfsd_grace_over || return 1
	until_ok 30 sh -c "ss -Hltn 'sport = :2049' | grep -q ."
}
nfsd_grace_over() { [ "$(cat /proc/fs/nfsd/v4_end_grace)" = Y ]; }

# mount_nfs mounts the export twice, NFSv3 (no NLM locking, no NFSACL: only NFS RPCs) and
# NFSv4.2.
mount_nfs() {
	mount -t nfs -o vers=3,nolock,noacl 127.0.0.1:/srv/nfs "$nfs3" &&
		mount -t nfs -o vers=4.2 127.0.0.1:/ "$nfs4"
}
