#!/usr/bin/env bash
# image.sh KERNEL: builds, or finds in the cache, the e2e guest for KERNEL and prints the
# directory that holds its `vmlinuz`, `initrd`, `kernel-version` and `package`. KERNEL is one of
#
#	5.10    bullseye-security's newest 5.10 (linux-image-amd64 there: linux-image-5.10.*-amd64)
#	6.1     bookworm's own kernel (linux-image-amd64)
#	6.12    bookworm-security's linux-image-6.12-amd64
#	newest  the newest linux-image-amd64 of trixie-backports and sid, found at every run
#
# The guest is made only of Debian packages, from the archives the machine's apt sources name:
# a bookworm root from mmdebstrap (Samba, cifs-utils, the kernel NFS server and client tools,
# iproute2, kmod, procps, tcpdump, trace-cmd, and systemd with D-Bus for the systemd scenario) and the kernel's image and the few module trees the tests need
# (cifs, nfsd, nfsv3, nfsv4 and their dependencies, sch_netem, virtio-9p). 6.1 and 6.12 come from
# the machine's own apt configuration; 5.10 and newest from suites it does not carry, on the same
# archives: the one behind its bookworm (debian) and the one behind its bookworm-security
# (debian-security), with package lists of their own under .cache/apt-KERNEL/. Both parts are
# cached under .cache/, keyed by a hash of the recipe (this script, lib.sh and image/), and a
# guest also by the kernel package it holds, so a newer upload of that kernel makes a new guest;
# a rerun takes no time; delete .cache/ to rebuild from nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

kernel=${1:-}
# suites: the "archive suite" pairs (debian or debian-security) of the kernels the machine's apt
# sources do not carry; empty: the machine's own sources.
suites=()
case $kernel in
5.10) meta=linux-image-amd64 pattern='linux-image-5.10.*-amd64' suites=(debian-security:bullseye-security) ;;
6.1) meta=linux-image-amd64 pattern='linux-image-6.1.0-*-amd64' ;; # bookworm's own kernel
6.12) meta=linux-image-6.12-amd64 pattern='linux-image-6.12.*-amd64' ;;
newest) meta=linux-image-amd64 pattern='linux-image-*-amd64' suites=(debian:trixie-backports debian:sid) ;;
*) die "usage: image.sh 5.10|6.1|6.12|newest" ;;
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

# archive_uri NAME prints the URI of the machine's Debian archive NAME: debian, the one its
# bookworm main comes from, or debian-security, the one of its bookworm-security.
archive_uri() {
	local release=bookworm
	[ "$1" = debian-security ] && release=bookworm-security
	# shellcheck disable=SC2016 # apt fills in the $(FIELD)s
	apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 'Created-By: Packages' |
		awk -v r="$release" '$2 == r && $3 == "main" {print $1; exit}'
}

# apt_opts: the options that point apt at the kernel's suites, on lists of their own, when the
# machine's sources do not carry them; empty for the machine's own sources.
apt_opts=()
if [ ${#suites[@]} -gt 0 ]; then
	adir=$cache/apt-$kernel
	mkdir -p "$adir/lists/partial" "$adir/archives/partial"
	: >"$adir/sources.list"
	for s in "${suites[@]}"; do
		uri=$(archive_uri "${s%%:*}")
		[ -n "$uri" ] || die "the machine's apt sources name no ${s%%:*} archive (bookworm or bookworm-security main) to take ${s#*:} from"
		echo "deb $uri ${s#*:} main" >>"$adir/sources.list"
	done
	# The suites' own lists, not the machine's; no installed packages. The archives' Release files
	# are checked against the machine's Debian keyring as usual, but not for expiry: a mirror that
	# is a snapshot serves sid's Release past its week of validity.
	apt_opts=(-o "Dir::State::Lists=$adir/lists" -o "Dir::Etc::SourceList=$adir/sources.list"
		-o Dir::Etc::SourceParts=/dev/null -o "Dir::Cache::Archives=$adir/archives"
		-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o Dir::State::status=/dev/null
		-o Acquire::Check-Valid-Until=false)
	# Every run looks for a newer upload; with the mirror out of reach the last lists serve.
	apt-get "${apt_opts[@]}" update -qq >/dev/null 2>&1 ||
		compgen -G "$adir/lists/*Packages*" >/dev/null || die "cannot fetch the package lists of ${suites[*]}"
fi

# resolve prints "PACKAGE VERSION" of the kernel image behind the newest version of $meta.
resolve() {
	local v
	v=$(apt-cache "${apt_opts[@]}" show "$meta" 2>/dev/null | awk '/^Version: / {print $2}' |
		sort -u | sort_versions | tail -n 1)
	[ -n "$v" ] || return 0
	apt-cache "${apt_opts[@]}" show "$meta=$v" 2>/dev/null |
		awk -v v="$v" '/^Depends: / {n = split(substr($0, 10), d, /, /); for (i = 1; i <= n; i++) if (d[i] ~ /^linux-image-/) {split(d[i], w, " "); print w[1], v; exit}}'
}
# sort_versions sorts Debian version strings, oldest first.
sort_versions() {
	local vs=() i j t
	mapfile -t vs
	for ((i = 1; i < ${#vs[@]}; i++)); do
		for ((j = i; j > 0; j--)); do
			dpkg --compare-versions "${vs[j - 1]}" gt "${vs[j]}" || break
			t=${vs[j]} vs[j]=${vs[j - 1]} vs[j - 1]=$t
		done
	done
	[ ${#vs[@]} -eq 0 ] || printf '%s\n' "${vs[@]}"
}
read -r pkg version < <(resolve) || true
if [ -z "${pkg:-}" ] && [ ${#suites[@]} -eq 0 ]; then
	apt-get update -qq
	read -r pkg version < <(resolve) || true
fi
# shellcheck disable=SC2053 # pattern match intended
[[ -n ${pkg:-} && $pkg == $pattern ]] || die "no $pattern package behind $meta in ${suites[*]:-the configured apt sources}"

if [ -f "$out/initrd" ] && [ "$(cat "$out/package" 2>/dev/null)" = "$pkg=$version" ]; then
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
		--include=mount,mawk,samba,cifs-utils,nfs-kernel-server,iproute2,kmod,procps,tcpdump,trace-cmd,systemd,dbus,init-system-helpers \
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

log "fetching the $kernel kernel: $pkg $version"
start=$SECONDS
# Up to 6.x the image package holds the kernel and its modules. From 7.x on it is empty and
# depends, at the same version, on linux-binary-ABI (vmlinuz, under lib/modules/VERSION/),
# linux-modules-ABI and linux-base-ABI (modules.builtin, ...), all under usr/lib.
parts=("$pkg=$version")
abi=${pkg#linux-image-}
mapfile -t -O 1 parts < <(apt-cache "${apt_opts[@]}" show "$pkg=$version" |
	awk -v abi="$abi" -v v="$version" '/^Depends: / {n = split(substr($0, 10), d, /, /); for (i = 1; i <= n; i++) {split(d[i], w, " "); if (w[1] ~ "^linux-(binary|modules|base)-" && substr(w[1], length(w[1]) - length(abi) + 1) == abi) print w[1] "=" v}; exit}')
(cd "$tmp" && apt-get "${apt_opts[@]}" download -qq -o APT::Sandbox::User=root "${parts[@]}") || die "cannot download ${parts[*]}"
for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/kernel"; done
# One layout for depmod and modprobe -d: lib/modules, a link to usr/lib/modules when the
# packages install there.
if [ ! -d "$tmp/kernel/lib/modules" ] && [ -d "$tmp/kernel/usr/lib/modules" ]; then
	ln -s usr/lib "$tmp/kernel/lib"
fi
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
vmlinuz=$tmp/kernel/boot/vmlinuz-$kver
[ -f "$vmlinuz" ] || vmlinuz=$kroot/vmlinuz
cp "$vmlinuz" "$tmp/out/vmlinuz"
echo "$kver" >"$tmp/out/kernel-version"
echo "$pkg=$version" >"$tmp/out/package"
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
