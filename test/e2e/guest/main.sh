#!/bin/bash
# The e2e guest's script (started by image/init, read from the host folder mounted at /host):
# loads the modules, starts Samba and the kernel NFS server, mounts the share and the NFS export
# (NFSv3 and NFSv4.2), then runs each scenario named in
# /host/scenarios. A scenario writes its evidence to /host/out/<scenario>/; the host asserts on
# it. When /host/bin/aod exists the agent runs during each scenario (see aod_start), and so does
# the test's own probe of aod's BPF programs when /host/bin/e2eguest exists.
# /host/out/status says "ok" when every scenario ran to its end (not that its assertions hold),
# else which failed; a failed scenario does not stop the next one.
set -uo pipefail
# shellcheck source=lib.sh
. /host/guest/lib.sh
out=/host/out
mkdir -p "$out"
fail() { echo "e2e guest: $*" >&2; echo "failed: $*" >"$out/status"; exit 1; }

echo "kernel $(uname -r)" >"$out/timing"
echo "script_start_s $(now)" >>"$out/timing"
modprobe -a cifs nfsd nfsv3 nfsv4 sch_netem || fail "cannot load cifs, nfsd, nfsv3, nfsv4 and sch_netem"
mkdir -p /run/samba /var/log/samba
smbd_start || fail "smbd does not listen on 445"
mount_share || fail "cannot mount //127.0.0.1/share"
# Without the NFS server the SMB scenarios still run; the NFS ones fail, and the host says why.
if nfsd_start; then
	mount_nfs || fail "cannot mount the NFS export"
else
	echo "the kernel NFS server does not start (console.log)" >"$out/nfs-unavailable"
fi
echo "mounted_s $(now)" >>"$out/timing"
uname -r >"$out/kernel-release"
# The nfs_tasks action reads sunrpc's RPC clients in debugfs, which most systems mount.
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
# The kernel's BTF of the structures the NFS programs read, for their test fixtures
# (bpf/internal/sunrpcbtf); about 6 MB. Kernels before 5.11 have no BTF of modules.
mkdir -p "$out/btf" && cp /sys/kernel/btf/vmlinux "$out/btf/" &&
	for m in sunrpc nfs nfsv4 cifs; do [ ! -f "/sys/kernel/btf/$m" ] || cp "/sys/kernel/btf/$m" "$out/btf/"; done
# The kernel's tracepoint formats (the host checks aod's programs against cifs's, and keeps
# them as fixtures, testdata/kernel-*/) and the modules' symbols: every cifs event, and the
# sunrpc and nfs events aod's NFS programs attach to, each after a "--- NAME" line. Read
# with builtins and written to the guest's memory first, then copied once: under emulation
# each process and each write to the host folder costs.
dump_formats() {
	local f name line
	for f in "$@"; do
		[ -f "$f" ] || continue
		name=${f%/format}
		echo "--- ${name##*/}"
		while IFS= read -r line; do echo "$line"; done <"$f"
	done
}
mkdir -p /tmp/formats
ev=/sys/kernel/tracing/events
dump_formats "$ev"/cifs/*/format >/tmp/formats/formats-cifs.txt
dump_formats "$ev"/sunrpc/{rpc_stats_latency,rpc_call_rpcerror,rpc_socket_connect}/format "$ev"/nfs/nfs_xdr_status/format "$ev"/nfs4/nfs4_xdr_status/format >/tmp/formats/formats-nfs.txt
grep -E '\[(cifs|sunrpc|nfs|nfsv4)\]$' /proc/kallsyms >/tmp/formats/kallsyms.txt
cp /tmp/formats/* "$out/"
echo "formats_s $(now)" >>"$out/timing"

# bg_start NAME READY CMD...: starts CMD in the background in $dir, its output in $dir/NAME.log,
# and waits until the command READY succeeds (or the process dies, or 60 s pass).
bg_start() {
	local name=$1 ready=$2 pid deadline=$((SECONDS + 60))
	shift 2
	(cd "$dir" && exec "$@") >"$dir/$name.log" 2>&1 &
	pid=$!
	bg_pids[$name]=$pid
	until $ready 2>/dev/null; do
		kill -0 "$pid" 2>/dev/null || { echo "$name exited before it was ready" >&2; return 1; }
		[ $SECONDS -lt $deadline ] || { echo "$name not ready after 60 s" >&2; return 1; }
		sleep 0.2
	done
}

# bg_stop NAME: stops what bg_start started (SIGTERM) and keeps its exit status in $dir/NAME.exit.
bg_stop() {
	local pid=${bg_pids[$1]:-}
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	wait "$pid"
	echo $? >"$dir/$1.exit"
	unset "bg_pids[$1]"
}
declare -A bg_pids

# The BPF programs alone, loaded by the test's own probe: what they count is compared with
# the kernel's counts, whatever the agent does with it.
probe_ready() { [ -f "$dir/probe.ready" ]; }
# /host/probe-args, when the host wrote one, holds more arguments for it (e.g. -fallback force).
probe_start() {
	[ -x /host/bin/e2eguest ] || return 0
	local args=()
	[ ! -f /host/probe-args ] || read -ra args </host/probe-args
	bg_start probe probe_ready /host/bin/e2eguest probe "${args[@]}" -ready "$dir/probe.ready" -out "$dir/probe.json"
}

# The agent, on /host/aod/<scenario>.yaml when the host wrote one (else its embedded default),
# with a fresh output folder. It is ready once it logged which tracepoints it attached (or, on
# a kernel they cannot load on, that its NFS probes are not loaded) and serves /metrics. At the
# end its final /metrics and its output folder (bundles) are kept.
aod_ready() {
	grep -q '"msg":"cifs tracepoints"' "$dir/aod.log" && grep -qE '"msg":"NFS probes (attached|not loaded)' "$dir/aod.log" &&
		/host/bin/e2eguest scrape "$metrics_url" >/dev/null
}
aod_start() {
	[ -x /host/bin/aod ] || return 0
	# Its own file system: bundles need 256 MB free (bundle.min_free_mb) and the guest's root
	# holds less. A tmpfs takes memory only for what is written.
	umount /var/log/aod 2>/dev/null
	mkdir -p /var/log/aod
	mount -t tmpfs -o size=512m,mode=0700 aod /var/log/aod || return 1
	local config=()
	[ ! -f "/host/aod/$scenario.yaml" ] || config=(--config "/host/aod/$scenario.yaml")
	date +%s.%N >"$dir/aod.start"
	bg_start aod aod_ready /host/bin/aod --log-format=json run --control-socket= "${config[@]}"
}
aod_stop() {
	[ -n "${bg_pids[aod]:-}" ] || return 0
	metrics_snap final
	bg_stop aod
	cp -a /var/log/aod "$dir/aod-output" 2>/dev/null || mkdir -p "$dir/aod-output"
}

mapfile -t scenarios </host/scenarios
for scenario in "${scenarios[@]}"; do
	dir=$out/$scenario
	rm -rf "$dir"
	mkdir -p "$dir"
	[ -f "/host/guest/scenario-$scenario.sh" ] || fail "no scenario $scenario"
	echo "== $scenario" >&2
	start=$(now)
	# Whatever the previous scenario left (deferred closes) must not count in this one.
	quiesce || fail "$scenario: the client does not go idle"
	probe_start || failed+=" $scenario(probe)"
	aod_start || failed+=" $scenario(aod)"
	# Each scenario runs in a subshell so a failed step ends only that scenario. It must end
	# with the client idle and send nothing after its last snapshot.
	# shellcheck disable=SC1090 # one of scenario-*.sh
	(set -e; . "/host/guest/scenario-$scenario.sh")
	rc=$?
	# The probe stops first: the agent's shutdown bundle (smbinfo) sends requests of its own
	# after the scenario's trace has ended.
	bg_stop probe
	aod_stop
	echo "$rc" >"$dir/exit"
	echo "scenario_${scenario}_s $(awk -v a="$start" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}')" >>"$out/timing"
	dmesg >"$dir/dmesg"
	[ "$rc" -eq 0 ] || failed+=" $scenario($rc)"
done
echo "done_s $(now)" >>"$out/timing"
[ -z "${failed:-}" ] || fail "scenarios failed:$failed"
echo ok >"$out/status"

# The systemd scenario, when the host asked for it (/host/systemd), runs last and under systemd
# as PID 1: image/init execs systemd when this script leaves /run/e2e-systemd, and systemd runs
# scenario-systemd.sh as a unit of its boot, then powers off. Samba and the mounts stay as they
# are; the daemons' own units, and the ones the scenario does not need, are masked so that the
# boot stays short under emulation.
if [ -f /host/systemd ]; then
	units=/run/systemd/system
	mkdir -p "$units/multi-user.target.wants"
	cat >"$units/aod-e2e.service" <<-'EOF'
		[Unit]
		Description=aod e2e: the systemd scenario
		SuccessAction=poweroff
		FailureAction=poweroff
		[Service]
		Type=oneshot
		ExecStart=/bin/bash /host/guest/scenario-systemd.sh
		TimeoutStartSec=900
	EOF
	ln -sf ../aod-e2e.service "$units/multi-user.target.wants/aod-e2e.service"
	for u in smbd nmbd samba-ad-dc winbind nfs-server nfs-kernel-server nfs-mountd nfs-idmapd \
		nfsdcld rpcbind rpcbind.socket rpc-statd rpc-statd-notify nfs-blkmap getty.target \
		systemd-networkd-wait-online e2scrub_all.timer e2scrub_reap; do
		[[ $u == *.* ]] || u=$u.service
		ln -sf /dev/null "$units/$u"
	done
	echo "systemd_s $(now)" >>"$out/timing"
	touch /run/e2e-systemd
fi
