package config

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Linux's limits on a path: PATH_MAX bytes with the terminating NUL, NAME_MAX bytes
// a component.
const (
	pathMax = 4096
	nameMax = 255
)

// outputDirMax leaves room under aod_output_dir for one more component, the longest
// aod writes there (batches, a bundle, a capture file).
const outputDirMax = pathMax - 1 - (1 + nameMax)

// pathProblem says why the kernel would refuse s as a path, "" when it would not: a
// control character (a newline or NUL can never be typed in a unit file or a shell
// without harm, and NUL ends the string the kernel sees), more than max bytes, or a
// component longer than NAME_MAX.
func pathProblem(s string, max int) string {
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return fmt.Sprintf("a control character (%s at byte %d) in a path", strconv.QuoteRune(r), i)
	}
	if !utf8.ValidString(s) {
		return "a path that is not valid UTF-8"
	}
	if len(s) > max {
		return fmt.Sprintf("a path of %d bytes, longer than %d", len(s), max)
	}
	for c := range strings.SplitSeq(s, "/") {
		if len(c) > nameMax {
			return fmt.Sprintf("a path component of %d bytes (%s), longer than %d", len(c), strconv.Quote(clip(c)), nameMax)
		}
	}
	return ""
}

// pathAllowed completes allowed with the limits pathProblem checks.
func pathAllowed(allowed string, max int) string {
	return fmt.Sprintf("%s, of at most %d bytes, no component over %d bytes and no control characters", allowed, max, nameMax)
}

// path decodes a path-valued string of at most max bytes.
func (d *decoder) path(f field, allowed string, max int) (string, bool) {
	allowed = pathAllowed(allowed, max)
	s, ok := d.str(f, allowed)
	if !ok {
		return "", false
	}
	if problem := pathProblem(s, max); problem != "" {
		d.bad(f.val, f.path, problem, allowed)
		return "", false
	}
	return s, true
}

// setPath is setString for a file path.
func (d *decoder) setPath(m *fields, key string, dst *string) {
	if f, ok := m.get(key); ok {
		if v, ok := d.path(f, "a file path", pathMax-1); ok {
			*dst = v
		}
	}
}

// printable is a key or file name as messages print it: quoted when it holds a
// character that would garble or hide in a terminal (a newline, an escape), or is
// empty.
func printable(k string) string {
	if k == "" || !utf8.ValidString(k) || strings.IndexFunc(k, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(k)
	}
	return k
}
