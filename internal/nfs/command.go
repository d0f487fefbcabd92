package nfs

import (
	"strings"

	"github.com/linuxdiag/aod/internal/proto"
)

// Procedure codes (the command codes of NFS records, histograms and thresholds; the
// kernel side is AOD_NFS_* in bpf/include/aod.h). An NFSv4 RPC is one COMPOUND; the
// client's procedure index (NFSPROC4_CLNT_*, what /proc/self/mountstats lists per
// operation) tells which operation it carries. Codes 0-68 are the index as Linux 6.1
// and 6.12 number it, which are AODv2's numbers too; later kernels insert procedures
// (7.3: ZERO_RANGE after DEALLOCATE), so the probes translate their indexes (see
// Canonical) and the procedures those kernels added have codes of their own from 69.
const (
	V4Read        uint16 = 1
	V4Write       uint16 = 2
	V4Commit      uint16 = 3
	V4Open        uint16 = 4
	V4Close       uint16 = 8
	V4Setattr     uint16 = 9
	V4Access      uint16 = 17
	V4GetAttr     uint16 = 18
	V4Lookup      uint16 = 19
	V4Remove      uint16 = 21
	V4Rename      uint16 = 22
	V4Readdir     uint16 = 29
	V4Delegreturn uint16 = 31
	V4Sequence    uint16 = 41

	// V3Base + p is NFSv3 procedure p (RFC 1813).
	V3Base        uint16 = 96
	V3Null        uint16 = V3Base + 0
	V3GetAttr     uint16 = V3Base + 1
	V3SetAttr     uint16 = V3Base + 2
	V3Lookup      uint16 = V3Base + 3
	V3Access      uint16 = V3Base + 4
	V3Read        uint16 = V3Base + 6
	V3Write       uint16 = V3Base + 7
	V3Create      uint16 = V3Base + 8
	V3Mkdir       uint16 = V3Base + 9
	V3Remove      uint16 = V3Base + 12
	V3Rmdir       uint16 = V3Base + 13
	V3Rename      uint16 = V3Base + 14
	V3Readdir     uint16 = V3Base + 16
	V3ReaddirPlus uint16 = V3Base + 17
	V3Commit      uint16 = V3Base + 21

	// ACL3Base + p is NFSACL v3 procedure p (the kernel's ACLPROC3_*).
	ACL3Base   uint16 = 120
	ACL3GetACL uint16 = ACL3Base + 1
	ACL3SetACL uint16 = ACL3Base + 2

	// Other is any other procedure of the NFS programs (NFSv2, an index out of range).
	Other uint16 = 127
)

// v4Names are the NFSv4 client procedures by code.
var v4Names = [...]string{
	"NFSPROC4_CLNT_NULL", "NFSPROC4_CLNT_READ", "NFSPROC4_CLNT_WRITE", "NFSPROC4_CLNT_COMMIT",
	"NFSPROC4_CLNT_OPEN", "NFSPROC4_CLNT_OPEN_CONFIRM", "NFSPROC4_CLNT_OPEN_NOATTR",
	"NFSPROC4_CLNT_OPEN_DOWNGRADE", "NFSPROC4_CLNT_CLOSE", "NFSPROC4_CLNT_SETATTR",
	"NFSPROC4_CLNT_FSINFO", "NFSPROC4_CLNT_RENEW", "NFSPROC4_CLNT_SETCLIENTID",
	"NFSPROC4_CLNT_SETCLIENTID_CONFIRM", "NFSPROC4_CLNT_LOCK", "NFSPROC4_CLNT_LOCKT",
	"NFSPROC4_CLNT_LOCKU", "NFSPROC4_CLNT_ACCESS", "NFSPROC4_CLNT_GETATTR",
	"NFSPROC4_CLNT_LOOKUP", "NFSPROC4_CLNT_LOOKUP_ROOT", "NFSPROC4_CLNT_REMOVE",
	"NFSPROC4_CLNT_RENAME", "NFSPROC4_CLNT_LINK", "NFSPROC4_CLNT_SYMLINK",
	"NFSPROC4_CLNT_CREATE", "NFSPROC4_CLNT_PATHCONF", "NFSPROC4_CLNT_STATFS",
	"NFSPROC4_CLNT_READLINK", "NFSPROC4_CLNT_READDIR", "NFSPROC4_CLNT_SERVER_CAPS",
	"NFSPROC4_CLNT_DELEGRETURN", "NFSPROC4_CLNT_GETACL", "NFSPROC4_CLNT_SETACL",
	"NFSPROC4_CLNT_FS_LOCATIONS", "NFSPROC4_CLNT_RELEASE_LOCKOWNER", "NFSPROC4_CLNT_SECINFO",
	"NFSPROC4_CLNT_FSID_PRESENT", "NFSPROC4_CLNT_EXCHANGE_ID", "NFSPROC4_CLNT_CREATE_SESSION",
	"NFSPROC4_CLNT_DESTROY_SESSION", "NFSPROC4_CLNT_SEQUENCE", "NFSPROC4_CLNT_GET_LEASE_TIME",
	"NFSPROC4_CLNT_RECLAIM_COMPLETE", "NFSPROC4_CLNT_LAYOUTGET", "NFSPROC4_CLNT_GETDEVICEINFO",
	"NFSPROC4_CLNT_LAYOUTCOMMIT", "NFSPROC4_CLNT_LAYOUTRETURN", "NFSPROC4_CLNT_SECINFO_NO_NAME",
	"NFSPROC4_CLNT_TEST_STATEID", "NFSPROC4_CLNT_FREE_STATEID", "NFSPROC4_CLNT_GETDEVICELIST",
	"NFSPROC4_CLNT_BIND_CONN_TO_SESSION", "NFSPROC4_CLNT_DESTROY_CLIENTID", "NFSPROC4_CLNT_SEEK",
	"NFSPROC4_CLNT_ALLOCATE", "NFSPROC4_CLNT_DEALLOCATE", "NFSPROC4_CLNT_LAYOUTSTATS",
	"NFSPROC4_CLNT_CLONE", "NFSPROC4_CLNT_COPY", "NFSPROC4_CLNT_OFFLOAD_CANCEL",
	"NFSPROC4_CLNT_LOOKUPP", "NFSPROC4_CLNT_LAYOUTERROR", "NFSPROC4_CLNT_COPY_NOTIFY",
	"NFSPROC4_CLNT_GETXATTR", "NFSPROC4_CLNT_SETXATTR", "NFSPROC4_CLNT_LISTXATTRS",
	"NFSPROC4_CLNT_REMOVEXATTR", "NFSPROC4_CLNT_READ_PLUS",
	// Added after 6.12 (seen on 7.3), in code order of their arrival.
	"NFSPROC4_CLNT_ZERO_RANGE", "NFSPROC4_CLNT_OFFLOAD_STATUS",
}

// v3Names are the NFSv3 procedures, in procedure-number order.
var v3Names = [...]string{
	"NFS3PROC_NULL", "NFS3PROC_GETATTR", "NFS3PROC_SETATTR", "NFS3PROC_LOOKUP", "NFS3PROC_ACCESS",
	"NFS3PROC_READLINK", "NFS3PROC_READ", "NFS3PROC_WRITE", "NFS3PROC_CREATE", "NFS3PROC_MKDIR",
	"NFS3PROC_SYMLINK", "NFS3PROC_MKNOD", "NFS3PROC_REMOVE", "NFS3PROC_RMDIR", "NFS3PROC_RENAME",
	"NFS3PROC_LINK", "NFS3PROC_READDIR", "NFS3PROC_READDIRPLUS", "NFS3PROC_FSSTAT",
	"NFS3PROC_FSINFO", "NFS3PROC_PATHCONF", "NFS3PROC_COMMIT",
}

// acl3Names are the NFSACL v3 procedures.
var acl3Names = [...]string{"NFSACL3PROC_NULL", "NFSACL3PROC_GETACL", "NFSACL3PROC_SETACL"}

// commands is the table's Commands: every code below proto.MaxCommands.
var commands = func() []string {
	c := make([]string, proto.MaxCommands)
	copy(c, v4Names[:])
	copy(c[V3Base:], v3Names[:])
	copy(c[ACL3Base:], acl3Names[:])
	c[Other] = "NFS_PROC_OTHER"
	return c
}()

// Table is NFS's entry in the protocol registry: procedure names, NFS status names,
// and the names of the nfs.* metrics and attributes.
var Table = &proto.Table{
	Protocol:             proto.NFS,
	Commands:             commands,
	CommandPrefix:        "NFSPROC4_CLNT_",
	UnknownCommandPrefix: "NFS_PROC_",
	StatusName:           StatusName,
	LookupStatus:         LookupStatus,
	Port:                 2049,
	MetricPrefix:         "nfs",
	DurationHelp: "Duration of NFS RPCs the kernel client completed, as the kernel measured them " +
		"(rpc_stats_latency's execute time, what /proc/self/mountstats sums); failed RPCs carry error.type.",
	ErrorsHelp:  "NFS RPCs that failed, by NFS status (or errno for RPC-level failures), counted in the kernel.",
	Requests:    "NFS RPC",
	CommandNoun: "NFS procedure",
	ONCRPC:      oncRPC,
}

// oncRPC names an NFS procedure code as the ONC RPC call it is: program nfs version 4
// or 3, or nfsacl version 3, and the procedure without its prefix ("READ"), as
// mountstats prints it.
func oncRPC(code uint16) (program string, version int, procedure string, ok bool) {
	switch {
	case int(code) < len(v4Names):
		return "nfs", 4, strings.TrimPrefix(v4Names[code], "NFSPROC4_CLNT_"), true
	case code >= V3Base && int(code-V3Base) < len(v3Names):
		return "nfs", 3, strings.TrimPrefix(v3Names[code-V3Base], "NFS3PROC_"), true
	case code >= ACL3Base && int(code-ACL3Base) < len(acl3Names):
		return "nfsacl", 3, strings.TrimPrefix(acl3Names[code-ACL3Base], "NFSACL3PROC_"), true
	}
	return "", 0, "", false
}

func init() { proto.Register(Table) }

// Command returns the named command of an NFS procedure code.
func Command(code uint16) proto.Command { return proto.Command{Protocol: proto.NFS, Code: code} }

// Status returns the named status of an NFS status (or uint32(-errno), see StatusName).
func Status(code uint32) proto.Status { return proto.Status{Protocol: proto.NFS, Code: code} }

// V4Code returns the code of the NFSv4 client procedure a kernel lists as name (as
// /proc/self/mountstats and the sunrpc trace do: "OPEN_NOATTR", or the full
// "NFSPROC4_CLNT_OPEN_NOATTR"), or Other for one the table does not know.
func V4Code(name string) uint16 {
	if code, ok := Table.LookupCommand(name); ok && code < V3Base {
		return code
	}
	return Other
}

// Canonical returns the translation of a kernel's NFSv4 client procedure indexes to
// codes: order lists the kernel's procedures by index (the per-op statistics of an
// NFSv4 mount in /proc/self/mountstats, in order). Procedures the table does not know
// map to Other.
func Canonical(order []string) []uint16 {
	codes := make([]uint16, len(order))
	for i, name := range order {
		codes[i] = V4Code(name)
	}
	return codes
}
