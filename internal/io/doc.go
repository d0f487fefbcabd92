// Package io holds the name table of AODv2's io protocol: failed file operations as
// processes see them. Its commands are AODv2 iosnoop's operation names (OPEN, READ,
// ..., LOCK_FCNTL), each standing for the system calls that perform it (Syscalls);
// its statuses are Linux errno values, named as internal/errno names them (EIO,
// ESTALE). Registered as io's proto.Table, with the names of the io.* metrics.
// Importers that also use the standard library's io name this package fileio.
package io
