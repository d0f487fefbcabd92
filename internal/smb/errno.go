package smb

import (
	"iter"
	"maps"
)

// ErrnoName returns the Linux name of a positive errno value ("EIO" for 5), or ""
// when it has none. The Linux client reports a failed request's status mapped to
// -errno (the rc of smb3_cmd_err); pass the negated rc. It does not allocate.
func ErrnoName(errno int32) string {
	if errno <= 0 || int(errno) >= len(errnoNames) {
		return ""
	}
	return errnoNames[errno]
}

// LookupErrno returns the positive value of a Linux errno name such as "EACCES".
func LookupErrno(name string) (int32, bool) {
	e, ok := errnoValues[name]
	return e, ok
}

// ErrnoNames yields every errno name LookupErrno accepts, aliases included, in no
// particular order.
func ErrnoNames() iter.Seq[string] { return maps.Keys(errnoValues) }
