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
nfsd_start || fail "the NFS server does not start"
mount_nfs || fail "cannot mount the NFS export"
echo "mounted_s $(now)" >>"$out/timing"
uname -r >"$out/kernel-release"
# The nfs_tasks action reads sunrpc's RPC clients in debugfs, which most systems mount.
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
# The kernel's BTF of the structures the NFS programs read, for their test fixtures
# (bpf/internal/sunrpcbtf); about 6 MB. Kernels before 5.11 have no BTF of modules.
mkdir -p "$out/btf" && cp /sys/kernel/btf/vmlinux "$out/btf/" &&
	for m in sunrpc nfs nfsv4 cifs; do [ ! -f "/sys/kernel/btf/$m" ] || cp "/sys/kernel/btf/$m" "$out/btf/"; done
# The kernel's tracepoint formats and the modules' symbols, for the fixtures the programs are
# checked against (testdata/kernel-*/): cifs's, sunrpc's and nfs's events, each after a
# "--- NAME" line.
# Written in the guest's memory first and copied once, with as few processes as can be:
# under emulation each costs.
mkdir -p /tmp/formats
for group in cifs sunrpc nfs nfs4; do
	for f in /sys/kernel/tracing/events/"$group"/*/format; do
		[ -f "$f" ] || continue
		name=${f%/format}
		echo "--- ${name##*/}"
		cat "$f"
	done >"/tmp/formats/formats-$group.txt"
done
grep -E '\[(cifs|sunrpc|nfs|nfsv4)\]$' /proc/kallsyms | awk '{print $2, $3, $4}' >/tmp/formats/kallsyms.txt
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
