// Package errno names Linux errno values as the kernel's UAPI headers do. Every
// protocol's failures can end in an errno (the SMB client maps NTSTATUS to one; failed
// file operations return one), so the table is shared by all of them.
package errno

//go:generate go run ./generrno -include /usr/include/asm-generic -out errno_table.go

import (
	"iter"
	"maps"
)

// Name returns the Linux name of a positive errno value ("EIO" for 5), or ""
// when it has none. The Linux client reports a failed request's status mapped to
// -errno (the rc of smb3_cmd_err); pass the negated rc. It does not allocate.
func Name(errno int32) string {
	if errno <= 0 || int(errno) >= len(errnoNames) {
		return ""
	}
	return errnoNames[errno]
}

// Lookup returns the positive value of a Linux errno name such as "EACCES".
func Lookup(name string) (int32, bool) {
	e, ok := errnoValues[name]
	return e, ok
}

// Names yields every errno name Lookup accepts, aliases included, in no
// particular order.
func Names() iter.Seq[string] { return maps.Keys(errnoValues) }
