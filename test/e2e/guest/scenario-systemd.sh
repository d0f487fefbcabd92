#!/bin/bash
# systemd: aod installed from its .deb and run by systemd as PID 1, as on a user's host. It runs
# after the other scenarios, as the unit aod-e2e.service that main.sh's systemd_handover wrote
# (systemd then powers off). The share main.sh mounted, and Samba serving it, are still there.
# Each step leaves its evidence in /host/out/systemd/ and goes on: the host asserts.
#   install    dpkg -i of /host/pkg/aod.deb: enabled, not started
#   refused    aod_output_dir outside /var/log/aod without a drop-in: the unit fails, saying so
#   run        with the drop-in: started; slow SMB requests (netem) fire the latency anomaly,
#              whose bundle holds every action (journalctl from journald, the tcpdump and
#              trace-cmd captures under the unit's hardening)
#   reload     systemctl reload: the same process reloads its configuration
#   stop       systemctl stop: within TimeoutStopSec, the shutdown bundle written
#   upgrade    dpkg -i of /host/pkg/aod-upgrade.deb while running: the edited configuration
#              kept, the service restarted on the new version
#   security   systemd-analyze security aod.service
set -uo pipefail
# shellcheck source=lib.sh
. /host/guest/lib.sh
dir=/host/out/systemd
mkdir -p "$dir"
exec >"$dir/script.log" 2>&1
set -x
outdir=/srv/aod-out
# shellcheck disable=SC2034 # read by metrics_snap (lib.sh): it scrapes while this is set
declare -A bg_pids=([aod]=systemd)

# journal_since OUT: aod.service's journal since the last call (since the start the first time).
cursor=$(journalctl --no-pager -q -n 1 --show-cursor | sed -n 's/^-- cursor: //p')
journal_since() {
	local args=(-u aod.service --no-pager -q -o short-monotonic --show-cursor) next
	[ -z "$cursor" ] || args+=(--after-cursor "$cursor")
	journalctl "${args[@]}" >"$1.tmp"
	next=$(sed -n 's/^-- cursor: //p' "$1.tmp")
	[ -z "$next" ] || cursor=$next
	grep -v '^-- cursor: ' "$1.tmp" >"$1"
	rm -f "$1.tmp"
}
failed_once() { [ "$(systemctl show -P Result aod.service)" != success ]; }
reloaded() { journalctl -u aod.service --no-pager -q --after-cursor "$cursor" | grep -q 'configuration reloaded'; }
bundle_in_outdir() { ls "$outdir"/batches/*.tar.zst >/dev/null; }
# captures_started: both captures have started since the last journal_since (a bundle made
# before then records "capture not running").
captures_started() {
	local log
	log=$(journalctl -u aod.service --no-pager -q --after-cursor "$cursor" | grep 'msg="capture started"')
	grep -q 'capture=tcpdump' <<<"$log" && grep -q 'capture=trace-cmd' <<<"$log"
}
state() { echo "$(systemctl is-enabled aod.service) $(systemctl is-active aod.service)"; }
main_pid() { systemctl show -P MainPID aod.service; }
aod_ready() { /host/bin/e2eguest scrape "$metrics_url" >/dev/null; }

# install
dpkg -i /host/pkg/aod.deb >"$dir/install.log" 2>&1
echo $? >"$dir/install.exit"
state >"$dir/install.state"
dpkg-query -W -f '${Version}' aod >"$dir/install.version"

# refused: the configuration's output folder is not writable under ProtectSystem=strict.
install -m 0644 /host/aod/systemd.yaml /etc/aod/aod.yaml
# A file system of its own: bundles need 256 MB free (bundle.min_free_mb), more than the
# guest's root has; a tmpfs takes memory only for what is written.
mkdir -p "$outdir"
mount -t tmpfs -o size=512m,mode=0700 aod-out "$outdir"
systemctl start aod.service
echo $? >"$dir/refused.exit"
until_ok 60 failed_once
systemctl show -P Result aod.service >"$dir/refused.result"
# Restart=on-failure would try again: stop that before the drop-in.
systemctl stop aod.service
systemctl reset-failed aod.service
journal_since "$dir/refused.log"

# run: the drop-in the error message asks for.
mkdir -p /etc/systemd/system/aod.service.d
printf '[Service]\nReadWritePaths=%s\n' "$outdir" >/etc/systemd/system/aod.service.d/output.conf
systemctl daemon-reload
systemctl start aod.service
echo $? >"$dir/run.exit"
until_ok 60 aod_ready
until_ok 60 captures_started
main_pid >"$dir/run.pid"
w=$mnt/systemd
mkdir -p "$w"
for i in $(seq 1 5); do echo "file $i" >"$w/f$i"; done
tc qdisc add dev lo root netem delay 50ms
for round in 1 2 3; do small_requests "$w" "$round"; done
until_ok 180 bundle_in_outdir
tc qdisc del dev lo root
rm -r "$w"
quiesce

# reload
systemctl reload aod.service
echo $? >"$dir/reload.exit"
until_ok 60 reloaded
main_pid >"$dir/reload.pid"
state >"$dir/reload.state"

# stop: the agent's last /metrics first (loadAgent reads them), then how long the stop took.
metrics_snap final
start=$(now)
systemctl stop aod.service
echo $? >"$dir/stop.exit"
awk -v a="$start" -v b="$(now)" 'BEGIN{printf "%.2f\n", b-a}' >"$dir/stop.seconds"
systemctl show -P ExecMainStatus aod.service >"$dir/aod.exit"
systemctl show -P Result aod.service >"$dir/stop.result"
journal_since "$dir/aod.log"
mkdir -p "$dir/aod-output"
cp -a "$outdir/batches" "$dir/aod-output/"

# upgrade, with the service running and its configuration edited.
systemctl start aod.service
until_ok 60 aod_ready
main_pid >"$dir/upgrade.pid-before"
echo "# kept across the upgrade" >>/etc/aod/aod.yaml
dpkg -i /host/pkg/aod-upgrade.deb >"$dir/upgrade.log" 2>&1
echo $? >"$dir/upgrade.exit"
until_ok 60 aod_ready
main_pid >"$dir/upgrade.pid-after"
state >"$dir/upgrade.state"
dpkg-query -W -f '${Version}' aod >"$dir/upgrade.version"
tail -n 1 /etc/aod/aod.yaml >"$dir/upgrade.config-tail"
ls /etc/aod >"$dir/upgrade.etc"
journal_since "$dir/upgrade.journal"

# security: the unit's exposure as systemd rates it.
systemd-analyze security --no-pager aod.service >"$dir/security.txt" 2>&1
echo $? >"$dir/security.exit"
systemctl stop aod.service
echo "done" >"$dir/status"
