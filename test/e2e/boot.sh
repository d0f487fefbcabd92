#!/usr/bin/env bash
# boot.sh IMAGE_DIR RUN_DIR: boots the guest built by image.sh with RUN_DIR as its host folder
# (virtio-9p, mounted at /host) and waits for it to power off. The console goes to
# RUN_DIR/out/console.log. Exits 0 when the guest wrote "ok" to RUN_DIR/out/status, 1 when it
# wrote anything else or nothing (crash, hang, timeout after E2E_TIMEOUT seconds, default 1200).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
image=${1:?usage: boot.sh IMAGE_DIR RUN_DIR}
run=${2:?usage: boot.sh IMAGE_DIR RUN_DIR}
[ -f "$image/initrd" ] || die "$image holds no guest (run image.sh)"
need_tools qemu-system-x86_64:qemu-system-x86
mkdir -p "$run/out"
rm -f "$run/out/status"

# Nested KVM is refused or broken on many CI machines: use it only when E2E_ACCEL asks for it.
# TCG runs both vCPUs in one thread (thread=single). With a thread per vCPU (thread=multi,
# qemu 7.2) a vCPU can keep running its old translation of kernel text that the other vCPU
# has since patched (static keys, tracepoints, BPF trampolines: an int3 first, then the new
# bytes), meet an int3 that is no longer in memory and oops. See README.md.
accel=${E2E_ACCEL:-tcg,thread=single}
# Warnings reach the console log; an oops or a soft lockup panics (with every CPU's
# backtrace), and a panic reboots, which ends qemu (-no-reboot): a wedged guest fails fast
# instead of timing out, and the test reports the kernel's fault from the console log.
timeout --foreground -k 10 "${E2E_TIMEOUT:-1200}" qemu-system-x86_64 \
	-accel "$accel" -cpu max -smp 2 -m 1024 \
	-nodefaults -display none -no-reboot -serial stdio \
	-kernel "$image/vmlinuz" -initrd "$image/initrd" \
	-append "console=ttyS0 panic=-1 oops=panic loglevel=5 softlockup_panic=1 softlockup_all_cpu_backtrace=1" \
	-virtfs "local,path=$run,mount_tag=host,security_model=none,id=host" \
	>"$run/out/console.log" 2>&1 </dev/null || log "qemu exited with $?"
status=$(cat "$run/out/status" 2>/dev/null || true)
[ "$status" = ok ] && exit 0
log "guest failed (status '${status:-none}'); console tail:"
tail -n 30 "$run/out/console.log" >&2
exit 1
