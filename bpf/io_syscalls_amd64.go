//go:build linux

package bpf

import "golang.org/x/sys/unix"

// IO operation codes as internal/io numbers them (AODv2 iosnoop's order; a test holds
// them equal). Package bpf does not import internal/io, for the reason it does not
// import internal/nfs (see nfsV4Procedures).
const (
	ioOpen uint8 = iota
	ioRead
	ioWrite
	ioStat
	ioMkdir
	ioRmdir
	ioUnlink
	ioRename
	ioFchmod
	ioTruncate
	ioLink
	ioSymlink
	ioReadlink
	ioReadv
	ioWritev
	ioMmap
	ioMunmap
	ioCreate
	ioFallocate
	ioGetdents
	ioLockFcntl
	ioNumOps
)

const (
	oCreat      = unix.O_CREAT
	atRemoveDir = unix.AT_REMOVEDIR
	noArg       = 0xff
)

// ioCall describes one system call that performs an io operation: its operation, how
// its file is found (a descriptor argument, or a path argument relative to a directory
// descriptor argument or the working directory), and the flag argument that turns it
// into alt (open with O_CREAT is CREATE) or, for fcntl, must be a lock command.
type ioCall struct {
	nr      uint32
	op, alt uint8
	arg     uint8 // ioArgNone, ioArgFD, ioArgPath
	fd      uint8 // descriptor argument, or the directory's for a path; noArg: none
	path    uint8
	flag    uint8 // noArg: none
	lockCmd bool
	mask    uint32
}

// Argument kinds: include/aod.h enum aod_io_arg.
const (
	ioArgNone uint8 = 0
	ioArgFD   uint8 = 1
	ioArgPath uint8 = 2
)

func fdCall(nr uint32, op uint8, fd uint8) ioCall {
	return ioCall{nr: nr, op: op, arg: ioArgFD, fd: fd, path: noArg, flag: noArg}
}

func pathCall(nr uint32, op uint8, dirfd, path uint8) ioCall {
	return ioCall{nr: nr, op: op, arg: ioArgPath, fd: dirfd, path: path, flag: noArg}
}

func (c ioCall) withFlag(arg uint8, mask uint32, alt uint8) ioCall {
	c.flag, c.mask, c.alt = arg, mask, alt
	return c
}

// ioCalls are the x86-64 system calls of each io operation. Where AODv2 named one
// operation for a family (STAT: stat, lstat, fstat, newfstatat, statx; FCHMOD: the
// chmod calls; LOCK_FCNTL: fcntl's lock commands and flock), every member counts.
// Arguments are numbered from 0.
var ioCalls = []ioCall{
	pathCall(unix.SYS_OPEN, ioOpen, noArg, 0).withFlag(1, oCreat, ioCreate),
	pathCall(unix.SYS_OPENAT, ioOpen, 0, 1).withFlag(2, oCreat, ioCreate),
	pathCall(unix.SYS_OPENAT2, ioOpen, 0, 1),
	pathCall(unix.SYS_CREAT, ioCreate, noArg, 0),
	fdCall(unix.SYS_READ, ioRead, 0),
	fdCall(unix.SYS_PREAD64, ioRead, 0),
	fdCall(unix.SYS_WRITE, ioWrite, 0),
	fdCall(unix.SYS_PWRITE64, ioWrite, 0),
	fdCall(unix.SYS_READV, ioReadv, 0),
	fdCall(unix.SYS_PREADV, ioReadv, 0),
	fdCall(unix.SYS_PREADV2, ioReadv, 0),
	fdCall(unix.SYS_WRITEV, ioWritev, 0),
	fdCall(unix.SYS_PWRITEV, ioWritev, 0),
	fdCall(unix.SYS_PWRITEV2, ioWritev, 0),
	pathCall(unix.SYS_STAT, ioStat, noArg, 0),
	pathCall(unix.SYS_LSTAT, ioStat, noArg, 0),
	fdCall(unix.SYS_FSTAT, ioStat, 0),
	pathCall(unix.SYS_NEWFSTATAT, ioStat, 0, 1),
	pathCall(unix.SYS_STATX, ioStat, 0, 1),
	pathCall(unix.SYS_MKDIR, ioMkdir, noArg, 0),
	pathCall(unix.SYS_MKDIRAT, ioMkdir, 0, 1),
	pathCall(unix.SYS_RMDIR, ioRmdir, noArg, 0),
	pathCall(unix.SYS_UNLINK, ioUnlink, noArg, 0),
	pathCall(unix.SYS_UNLINKAT, ioUnlink, 0, 1).withFlag(2, atRemoveDir, ioRmdir),
	pathCall(unix.SYS_RENAME, ioRename, noArg, 0),
	pathCall(unix.SYS_RENAMEAT, ioRename, 0, 1),
	pathCall(unix.SYS_RENAMEAT2, ioRename, 0, 1),
	fdCall(unix.SYS_FCHMOD, ioFchmod, 0),
	pathCall(unix.SYS_CHMOD, ioFchmod, noArg, 0),
	pathCall(unix.SYS_FCHMODAT, ioFchmod, 0, 1),
	pathCall(unix.SYS_FCHMODAT2, ioFchmod, 0, 1),
	pathCall(unix.SYS_TRUNCATE, ioTruncate, noArg, 0),
	fdCall(unix.SYS_FTRUNCATE, ioTruncate, 0),
	pathCall(unix.SYS_LINK, ioLink, noArg, 1),
	pathCall(unix.SYS_LINKAT, ioLink, 2, 3),
	pathCall(unix.SYS_SYMLINK, ioSymlink, noArg, 1),
	pathCall(unix.SYS_SYMLINKAT, ioSymlink, 1, 2),
	pathCall(unix.SYS_READLINK, ioReadlink, noArg, 0),
	pathCall(unix.SYS_READLINKAT, ioReadlink, 0, 1),
	fdCall(unix.SYS_MMAP, ioMmap, 4),
	{nr: unix.SYS_MUNMAP, op: ioMunmap, arg: ioArgNone, fd: noArg, path: noArg, flag: noArg},
	fdCall(unix.SYS_FALLOCATE, ioFallocate, 0),
	fdCall(unix.SYS_GETDENTS, ioGetdents, 0),
	fdCall(unix.SYS_GETDENTS64, ioGetdents, 0),
	func() ioCall { c := fdCall(unix.SYS_FCNTL, ioLockFcntl, 0); c.flag, c.lockCmd = 1, true; return c }(),
	fdCall(unix.SYS_FLOCK, ioLockFcntl, 0),
}
