# shellcheck shell=bash
# Shared by the e2e scripts (sourced, not run).

die() { echo "e2e: $*" >&2; exit 1; }
log() { echo "e2e: $*" >&2; }

# need_tools installs, from the machine's own apt configuration, the Debian packages that provide
# the given commands when any is missing. Arguments are command:package pairs.
need_tools() {
	local missing=() pair
	for pair in "$@"; do
		command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" -eq 0 ] || die "missing host packages (${missing[*]}); install them as root"
	log "installing host packages: ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
