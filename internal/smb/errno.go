package smb

import (
	"iter"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxErrno bounds the errno values scanned for names; Linux's highest is EHWPOISON (133).
const maxErrno = 4096

// errnoAliases are the second names Linux gives some errno values, which the unix
// package's table lists under one name only.
var errnoAliases = map[string]syscall.Errno{
	"EWOULDBLOCK": unix.EWOULDBLOCK,
	"EDEADLOCK":   unix.EDEADLOCK,
	"EOPNOTSUPP":  unix.EOPNOTSUPP,
}

// ErrnoName returns the name of a positive errno value ("EIO" for 5), or "" when
// it has none. The Linux client reports a failed request's status mapped to -errno
// (the rc of smb3_cmd_err); pass the negated rc. It does not allocate.
func ErrnoName(errno int32) string {
	if errno <= 0 {
		return ""
	}
	return unix.ErrnoName(syscall.Errno(errno))
}

var errnoByName = sync.OnceValue(func() map[string]int32 {
	m := make(map[string]int32, 160)
	for e := int32(1); e < maxErrno; e++ {
		if name := ErrnoName(e); name != "" {
			m[name] = e
		}
	}
	for name, e := range errnoAliases {
		m[name] = int32(e)
	}
	return m
})

// LookupErrno returns the positive value of an errno name such as "EACCES".
func LookupErrno(name string) (int32, bool) {
	e, ok := errnoByName()[name]
	return e, ok
}

// ErrnoNames yields every errno name LookupErrno accepts, aliases included, in no
// particular order.
func ErrnoNames() iter.Seq[string] {
	return func(yield func(string) bool) {
		for name := range errnoByName() {
			if !yield(name) {
				return
			}
		}
	}
}
