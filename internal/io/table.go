package io

import (
	"iter"

	"github.com/linuxdiag/aod/internal/errno"
	"github.com/linuxdiag/aod/internal/proto"
)

// Operation codes, in AODv2 iosnoop's order; the kernel side (bpf/io.c) receives them
// per system call from Syscalls, so only this file numbers them.
const (
	Open uint16 = iota
	Read
	Write
	Stat
	Mkdir
	Rmdir
	Unlink
	Rename
	Fchmod
	Truncate
	Link
	Symlink
	Readlink
	Readv
	Writev
	Mmap
	Munmap
	Create
	Fallocate
	Getdents
	LockFcntl
	// NumOps is the number of operations.
	NumOps
)

// opNames are AODv2's operation names, indexed by code.
var opNames = []string{
	Open: "OPEN", Read: "READ", Write: "WRITE", Stat: "STAT", Mkdir: "MKDIR", Rmdir: "RMDIR",
	Unlink: "UNLINK", Rename: "RENAME", Fchmod: "FCHMOD", Truncate: "TRUNCATE", Link: "LINK",
	Symlink: "SYMLINK", Readlink: "READLINK", Readv: "READV", Writev: "WRITEV", Mmap: "MMAP",
	Munmap: "MUNMAP", Create: "CREATE", Fallocate: "FALLOCATE", Getdents: "GETDENTS",
	LockFcntl: "LOCK_FCNTL",
}

// Keys of the io.* metrics and records. A failed file operation has no duration and
// no server: it is counted by operation, errno (error.type, as every protocol names
// its failure), and the file system it hit, named by OpenTelemetry's
// system.filesystem.* attributes (the file system semantic conventions) where the other
// protocols put server.address and their share or export.
const (
	KeyOperation  = "io.operation"
	KeyMountpoint = "system.filesystem.mountpoint"
	KeyFSType     = "system.filesystem.type"
	KeyMountID    = "io.mount.id"
)

// Table is io's entry in the protocol registry.
var Table = &proto.Table{
	Protocol:             proto.IO,
	Commands:             opNames,
	UnknownCommandPrefix: "IO_OP_",
	StatusName:           StatusName,
	LookupStatus:         LookupStatus,
	MetricPrefix:         "io",
	Keys: proto.Keys{
		Server:    KeyFSType,
		Command:   KeyOperation,
		Share:     KeyMountpoint,
		Status:    "io.errno",
		SessionID: KeyMountID,
		TreeID:    "io.filesystem.magic",
		MessageID: "io.syscall.number",
	},
	ErrorsHelp: "File system calls that failed, by operation, errno and the mount they hit " +
		"(the mount their path lookup or file descriptor was on), counted in the kernel.",
	Requests:    "file operation",
	CommandNoun: "io operation",
}

func init() { proto.Register(Table) }

// StatusName names an errno value ("ESTALE"), or "" for one without a name.
func StatusName(code uint32) string {
	if code > 1<<15 {
		return ""
	}
	return errno.Name(int32(code))
}

// LookupStatus returns the errno value of an errno name.
func LookupStatus(name string) (uint32, bool) {
	e, ok := errno.Lookup(name)
	if !ok || e <= 0 {
		return 0, false
	}
	return uint32(e), true
}

// StatusNames yields every errno name LookupStatus accepts.
func StatusNames() iter.Seq[string] { return errno.Names() }

// Command returns the named command of an operation code.
func Command(code uint16) proto.Command { return proto.Command{Protocol: proto.IO, Code: code} }

// Status returns the named status of an errno value.
func Status(code uint32) proto.Status { return proto.Status{Protocol: proto.IO, Code: code} }
