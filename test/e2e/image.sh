#!/usr/bin/env bash
# image.sh KERNEL: builds, or finds in the cache, the e2e guest for KERNEL (6.1 or 6.12) and prints
# the directory that holds its `vmlinuz`, `initrd` and `kernel-version`.
#
# The guest is made only of Debian packages, from the archives the machine's apt sources name:
# a bookworm root from mmdebstrap (Samba, cifs-utils, the kernel NFS server and client tools,
# iproute2, kmod, procps, tcpdump) and the kernel's image and the few module trees the tests need
# (cifs, nfsd, nfsv3, nfsv4 and their dependencies, sch_netem, virtio-9p). Both parts are cached under .cache/, keyed by a hash of the recipe (this script,
# lib.sh and image/), so a rerun takes no time; delete .cache/ to rebuild from nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

kernel=${1:-}
case $kernel in
6.1) meta=linux-image-amd64 pattern='linux-image-6.1.0-*-amd64' ;; # bookworm's own kernel
6.12) meta=linux-image-6.12-amd64 pattern='linux-image-6.12.*-amd64' ;;
*) die "usage: image.sh 6.1|6.12" ;;
esac
# Modules the guest loads by name; their dependencies and soft dependencies come along.
modules=(cifs nfsd nfsv3 nfsv4 sch_netem 9p 9pnet_virtio virtio_pci nls_utf8)

[ "$(id -u)" -eq 0 ] || die "building the guest needs root (mmdebstrap root mode, file ownership in the initrd)"
cache=${E2E_CACHE:-$here/.cache}
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

recipe=$(cat "$here/image.sh" "$here/lib.sh" "$here"/image/* | sha256sum | cut -c1-16)
rootfs=$cache/rootfs-$recipe.cpio
out=$cache/guest-$kernel-$recipe
if [ -f "$out/initrd" ]; then
	echo "$out"
	exit 0
fi
need_tools mmdebstrap:mmdebstrap cpio:cpio depmod:kmod

tmp=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if [ ! -f "$rootfs" ]; then
	log "building the guest root (bookworm) for recipe $recipe"
	start=$SECONDS
	# The bookworm archives the machine's apt sources name (main, updates, security), as
	# one-line sources for mmdebstrap.
	# shellcheck disable=SC2016 # apt fills in the $(FIELD)s
	mapfile -t sources < <(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 'Created-By: Packages' |
		awk '$2 ~ /^bookworm(-updates|-security)?$/ && $3 == "main" {print "deb " $1 " " $2 " " $3}' | sort -u)
	[ ${#sources[@]} -gt 0 ] || die "the machine's apt sources name no bookworm main archive"
	smbconf=$(printf %q "$here/image/smb.conf")
	init=$(printf %q "$here/image/init")
	exports=$(printf %q "$here/image/exports")
	# shellcheck disable=SC2016 # mmdebstrap runs the hooks with the root as $1
	# The root lives in the guest's RAM and is unpacked at every boot, so what the tests never run
	# is left out: documentation, manuals, translations, and Perl and Samba's Python modules
	# (only needed to install usrmerge and by samba-tool).
	mmdebstrap --quiet --variant=essential \
		--include=mount,mawk,samba,cifs-utils,nfs-kernel-server,iproute2,kmod,procps,tcpdump \
		--dpkgopt='path-exclude=/usr/share/doc/*' \
		--dpkgopt='path-exclude=/usr/share/man/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		--dpkgopt='path-exclude=/usr/share/info/*' \
		--customize-hook="install -m 0644 $smbconf"' "$1/etc/samba/smb.conf"' \
		--customize-hook="install -m 0755 $init"' "$1/init"' \
		--customize-hook="install -m 0644 $exports"' "$1/etc/exports"' \
		--customize-hook='mkdir -p "$1/host" "$1/mnt/smb" "$1/srv/share" "$1/mnt/n3" "$1/mnt/n4" "$1/srv/nfs"' \
		--customize-hook='chroot "$1" useradd --no-create-home --shell /usr/sbin/nologin aod' \
		--customize-hook='chroot "$1" chown aod: /srv/share' \
		--customize-hook='printf "aod-e2e\naod-e2e\n" | chroot "$1" smbpasswd -s -a aod >/dev/null' \
		--customize-hook='chroot "$1" dpkg --purge --force-depends usrmerge libfile-find-rule-perl libnumber-compare-perl libtext-glob-perl perl perl-modules-5.36 libperl5.36 python3-samba >/dev/null' \
		bookworm "$tmp/root" "${sources[@]}"
	(cd "$tmp/root" && find . -print0 | LC_ALL=C sort -z | cpio --null --quiet -o -H newc) >"$tmp/rootfs.cpio"
	mv "$tmp/rootfs.cpio" "$rootfs"
	rm -rf "$tmp/root"
	log "guest root built in $((SECONDS - start)) s ($(du -m "$rootfs" | cut -f1) MB)"
fi

log "fetching the $kernel kernel"
start=$SECONDS
# The meta-package names the current kernel package of that line; apt-get download takes it from
# the mirror the machine is configured with.
pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
if [ -z "$pkg" ]; then
	apt-get update -qq
	pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
fi
# shellcheck disable=SC2053 # pattern match intended
[[ -n $pkg && $pkg == $pattern ]] || die "no $pattern package behind $meta in the configured apt sources"
(cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg") || die "cannot download $pkg"
dpkg-deb -x "$tmp"/"$pkg"_*.deb "$tmp/kernel"
kver=$(ls "$tmp/kernel/lib/modules")
kroot=$tmp/kernel/lib/modules/$kver
depmod -b "$tmp/kernel" "$kver"

# The modules the guest loads, their dependencies, and their soft dependencies (cifs asks for
# crypto modules that way; those built into the kernel print as "builtin"). The crypto trees come
# whole: the kernel asks for algorithms by name at run time (gcm(aes) wants ghash, ctr, ...),
# which no dependency list records.
for f in "$kroot"/kernel/crypto/*.ko* "$kroot"/kernel/arch/x86/crypto/*.ko* "$kroot"/kernel/lib/crypto/*.ko*; do
	[ -e "$f" ] || continue
	f=${f##*/}
	modules+=("${f%%.ko*}")
done
wanted=()
add_module() {
	local out
	out=$(modprobe -d "$tmp/kernel" -S "$kver" --show-depends "$1" 2>/dev/null) || return 1
	mapfile -t -O "${#wanted[@]}" wanted < <(awk '$1 == "insmod" {print $2}' <<<"$out")
}
for m in "${modules[@]}"; do
	add_module "$m" || die "$kver has no module $m"
	for soft in $(modinfo -b "$tmp/kernel" -k "$kver" -F softdep "$m" | tr ' ' '\n' | grep -v ':$' || true); do
		add_module "$soft" || true # an alias nothing provides ("nls", "aead2")
	done
done
# They go under usr/: the root has a merged /usr, and the kernel's unpacker would replace the
# /lib symlink with a directory if this archive named lib/ itself.
mods=$tmp/mods/usr/lib/modules/$kver
mkdir -p "$mods"
printf '%s\n' "${wanted[@]}" | sort -u | while read -r file; do
	install -D -m 0644 "$file" "$mods/${file#"$kroot"/}"
done
cp "$kroot"/modules.builtin "$kroot"/modules.builtin.modinfo "$kroot"/modules.order "$mods/"
depmod -b "$tmp/mods/usr" "$kver"

mkdir -p "$tmp/out"
cp "$tmp/kernel/boot/vmlinuz-$kver" "$tmp/out/vmlinuz"
echo "$kver" >"$tmp/out/kernel-version"
# Linux unpacks concatenated cpio archives in order: the shared root, then this kernel's modules.
{
	cat "$rootfs"
	(cd "$tmp/mods" && find . -print0 | LC_ALL=C sort -z | cpio --null --quiet -o -H newc)
} >"$tmp/out/initrd"
rm -rf "$out"
mv "$tmp/out" "$out"
# Guests and roots of older recipes are never used again.
find "$cache" -maxdepth 1 \( -name 'rootfs-*.cpio' ! -name "rootfs-$recipe.cpio" -o -name 'guest-*' ! -name "guest-*-$recipe" \) -exec rm -rf {} +
log "guest $kernel ($kver) ready in $((SECONDS - start)) s: $out"
echo "$out"
