// Package archive writes aod's diagnostic bundles: tar streams compressed with zstd,
// created under a temporary name in the batches directory and renamed into place only
// once complete and on disk. It owns the bundle naming, so retention and readers agree
// on which files are aod's and which are still being written.
package archive

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Bundle names keep AODv2's pattern, aod_quick_<unix-nanos>_<protocol>_<type>.tar.zst,
// so tooling written for AODv2 keeps working.
const (
	bundlePrefix = "aod_quick_"
	// BundleSuffix ends every bundle name.
	BundleSuffix = ".tar.zst"
	// Temporaries start with a dot (hidden from a casual ls, never matching the final
	// pattern) and end in .tmp.
	tempPrefix   = "."
	tempSuffix   = ".tmp"
	spoolPrefix  = ".aod_spool_"
	maxNameField = 32
)

// BundleName returns the final file name of a bundle made at t for protocol and type.
// The protocol must not contain '_' (it separates the fields); both are reduced to
// lower-case letters, digits, '-' (and '_' in the type) so a name can never escape
// the directory or break parsing.
func BundleName(t time.Time, protocol, typ string) string {
	return fmt.Sprintf("%s%d_%s_%s%s", bundlePrefix, t.UnixNano(),
		sanitize(protocol, false), sanitize(typ, true), BundleSuffix)
}

func sanitize(s string, underscore bool) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		if b.Len() >= maxNameField {
			break
		}
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			b.WriteRune(c)
		case c == '_' && underscore:
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "unknown"
	}
	return b.String()
}

// Bundle is what a final bundle name says about the bundle.
type Bundle struct {
	Time     time.Time
	Protocol string
	Type     string
}

// ParseBundleName reports whether name is a final bundle name aod makes, and what it
// encodes. Anything else in the directory is not aod's and must be left alone.
func ParseBundleName(name string) (Bundle, bool) {
	rest, ok := strings.CutPrefix(name, bundlePrefix)
	if !ok {
		return Bundle{}, false
	}
	rest, ok = strings.CutSuffix(rest, BundleSuffix)
	if !ok {
		return Bundle{}, false
	}
	ts, rest, ok := strings.Cut(rest, "_")
	if !ok || ts == "" || len(ts) > 19 {
		return Bundle{}, false
	}
	nanos, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || nanos < 0 {
		return Bundle{}, false
	}
	proto, typ, ok := strings.Cut(rest, "_")
	if !ok || proto == "" || typ == "" || sanitize(proto, false) != proto || sanitize(typ, true) != typ {
		return Bundle{}, false
	}
	return Bundle{Time: time.Unix(0, nanos), Protocol: proto, Type: typ}, true
}

// tempName is the name a bundle is written under until it is complete.
func tempName(final string) string { return tempPrefix + final + tempSuffix }

// IsTempName reports whether name is one of aod's temporaries: a bundle being written
// (or left behind by a killed process), or a spool file that was not yet unlinked.
func IsTempName(name string) bool {
	if !strings.HasSuffix(name, tempSuffix) {
		return false
	}
	if strings.HasPrefix(name, spoolPrefix) {
		return true
	}
	inner, ok := strings.CutPrefix(strings.TrimSuffix(name, tempSuffix), tempPrefix)
	if !ok {
		return false
	}
	_, ok = ParseBundleName(inner)
	return ok
}
