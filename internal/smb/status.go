package smb

import (
	"iter"
	"slices"
	"strings"
)

// statusEntry is one row of the generated NTSTATUS tables.
type statusEntry struct {
	Code uint32
	Name string
}

// StatusName returns the canonical name of an NTSTATUS value ("STATUS_END_OF_FILE"),
// or "" when the value is not in the table. Where several names share a value
// (STATUS_SUCCESS and STATUS_WAIT_0) the canonical one is the first in ntstatus.tsv.
// It does not allocate.
func StatusName(code uint32) string {
	// A plain loop: slices.BinarySearchFunc makes an indirect call per step and is
	// ten times slower here, and this runs for every failed request.
	lo, hi := 0, len(statusByCode)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if statusByCode[mid].Code < code {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(statusByCode) && statusByCode[lo].Code == code {
		return statusByCode[lo].Name
	}
	return ""
}

// LookupStatus returns the value of an NTSTATUS name. Every name in the table is
// accepted, including the aliases that StatusName never returns.
func LookupStatus(name string) (uint32, bool) {
	i, ok := slices.BinarySearchFunc(statusByName[:], name, func(e statusEntry, n string) int {
		return strings.Compare(e.Name, n)
	})
	if !ok {
		return 0, false
	}
	return statusByName[i].Code, true
}

// CanonicalStatus returns the name StatusName gives the value of name, so that aliases
// are written one way; ok is false when name is not in the table.
func CanonicalStatus(name string) (canonical string, ok bool) {
	code, ok := LookupStatus(name)
	if !ok {
		return "", false
	}
	return StatusName(code), true
}

// StatusNames yields every NTSTATUS name in the table, aliases included, sorted.
func StatusNames() iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, e := range statusByName {
			if !yield(e.Name) {
				return
			}
		}
	}
}
