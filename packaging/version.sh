#!/bin/sh
# Prints the package version for the checkout, valid for both dpkg and rpm (digits
# first, no '-', which both use to separate the release; '~' sorts before anything,
# '+' and '.' after):
#   tag v1.2.3                   -> 1.2.3
#   3 commits after v1.2.3       -> 1.2.3+3.gabc1234
#   no tag yet, 412 commits      -> 0.0.0~412.gabc1234  (below any 0.0.0 release)
#   uncommitted changes          -> the above + .dirty
# The commit count keeps untagged builds of one branch in upgrade order.
set -eu
cd "$(dirname "$0")/.."
hash=$(git rev-parse --short=7 HEAD)
dirty=
git diff --quiet HEAD -- 2>/dev/null || dirty=.dirty
if d=$(git describe --tags --long --match 'v[0-9]*' 2>/dev/null); then
	n=${d%-g*}; n=${n##*-}
	tag=${d%-*-g*}; tag=${tag#v}
	# A tag's own pre-release part (v1.2.0-rc1) sorts before the release: 1.2.0~rc1.
	tag=$(printf '%s' "$tag" | tr '-' '~')
	if [ "$n" = 0 ]; then
		echo "$tag$dirty"
	else
		echo "$tag+$n.g$hash$dirty"
	fi
else
	echo "0.0.0~$(git rev-list --count HEAD).g$hash$dirty"
fi
