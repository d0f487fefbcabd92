/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The ABI between the BPF programs and Go: event kinds, counters, map keys and values,
 * and the ring-buffer record. bpf2go turns every struct and enum here into a Go type
 * (aodEvent, aodHistKey, ...), so the two sides cannot drift; Go tests pin the layout.
 * Every struct has explicit padding (reserved fields, always zero) so that keys compare
 * byte-wise and records have no holes with stale kernel memory.
 */
#ifndef AOD_H
#define AOD_H

#include "aod_buckets.h"

/* SMB2 command codes are 0..19 (MS-SMB2 2.2.1; 19 is SMB2_SERVER_TO_CLIENT_NOTIFICATION). */
#define AOD_NUM_COMMANDS 20
#define AOD_SMB2_SESSION_SETUP 1

/* map_flags of arrays user space maps into memory */
#define AOD_F_MMAPABLE (1U << 10)

/* Protocols; the values are internal/proto's Protocol constants. */
enum aod_protocol {
	AOD_PROTO_SMB = 1,
	AOD_PROTO_NFS = 2,
	AOD_PROTO_IO = 3,
};

/* Event kinds; the values are internal/event's Kind constants. */
enum event_kind {
	AOD_KIND_SLOW = 1,          /* completed at or over its command's threshold */
	AOD_KIND_ERROR = 2,         /* failed with a tracked NTSTATUS or errno */
	AOD_KIND_RECONNECT = 3,     /* smb3_reconnect */
	AOD_KIND_CONNECT = 4,       /* smb3_connect_done */
	AOD_KIND_CONNECT_ERROR = 5, /* smb3_connect_err */
	AOD_KIND_LOST = 6,          /* a connection was lost: the server closed it, it failed */
	AOD_KIND_CLOSED = 7,        /* the client closed an idle connection */
};

/* Indexes into the per-CPU "counters" array. */
enum counter {
	AOD_CTR_RING_FULL = 0,   /* ring reserve failed: an event was lost */
	AOD_CTR_ORPHANS,         /* completion without a recorded start */
	AOD_CTR_DOUBLE_DONE,     /* repeated completion of an already completed request */
	AOD_CTR_FILTERED,        /* completion neither slow nor a tracked failure */
	AOD_CTR_EMITTED,         /* records submitted to the ring */
	AOD_CTR_START_COLLISION, /* enter for a request identity already in flight */
	AOD_CTR_START_EVICTED,   /* in-flight entry overwritten: both slots of its bucket taken */
	AOD_CTR_HIST_FULL,       /* latency not recorded: histogram map full */
	AOD_CTR_ERRORS_FULL,     /* failure not counted: error map full */
	AOD_CTR_CHAIN_RELEASED,  /* in-flight entry freed: chained behind a failed compound member */
	AOD_NUM_COUNTERS,
};

/* Slots of a histogram value: slot 0 is the zero bucket, slot j+1 is kernel bucket j. */
#define AOD_HIST_SLOTS (AOD_HIST_NUM_BUCKETS + 1)

/*
 * One in-flight request, in the "starts" table. Its identity is (session_id, mid,
 * command): a mid is unique per TCP connection, and several sessions share a
 * connection; a session id is unique per server. (session, mid) is therefore unique
 * per connection, and the command, which the response repeats, tells apart the rare
 * same-(session, mid) pairs of two connections to different servers (sessionless
 * NEGOTIATE, mid 0). The tree id is not part of it on purpose: the completion
 * tracepoints read the response header, where an async response carries its AsyncId
 * in place of the tree id and a TREE_CONNECT response carries the new tree id.
 *
 * The table is a 2-way set-associative array: the bucket of a request is
 * (mid + hash(session_id)) mod buckets, so the consecutive mids of one session never
 * share a bucket and the two slots absorb a second session of the same connection.
 * Lookup, insert and free are a few loads and stores, no locks, no allocation.
 * start_ns == 0 marks a free slot; enter writes it last, completion clears it.
 * User space reads the table through mmap (in-flight listing) and frees entries that
 * never complete with a compare-and-swap on start_ns (age-out sweep).
 */
struct start_slot {
	__u64 start_ns; /* bpf_ktime_get_ns (CLOCK_MONOTONIC) at enter; 0: free */
	__u64 session_id;
	__u64 mid;
	__u64 cgroup_id; /* the issuing task's cgroup (cgroup v2 id, the directory's inode) */
	__u32 tree_id;   /* from the request header */
	__u32 pid;       /* thread id: completions run in cifsd or a kworker, not the caller */
	__u32 tgid;    /* process id */
	__u16 command;
	__u16 reserved;
	__u8 comm[16];
};

/* A recently completed request, to tell a repeated completion from an orphan. */
struct recent_slot {
	__u64 session_id;
	__u64 mid;
	__u16 command;
	__u16 valid;
	__u32 reserved;
};

/*
 * Mids after a failed request that can hold the requests of its compound chained behind
 * it: a compound has at most MAX_COMPOUND members (5; 7 in later kernels), each taking
 * CreditCharge mids (1 for the commands the client compounds), allocated together.
 */
#define AOD_CHAIN_MIDS 8

#define AOD_RECENT_BITS 12
#define AOD_RECENT_SLOTS (1 << AOD_RECENT_BITS)

/*
 * Key of the "histograms" and "errors" maps: one series per (session, tree, command,
 * NTSTATUS), so that the latencies of failed requests are apart from those of
 * successful ones, by status. A completion builds it once for both maps.
 */
struct req_key {
	__u64 session_id;
	__u32 tree_id;
	__u32 status; /* NTSTATUS of a failed request; 0: succeeded (histograms only) */
	__u16 command;
	__u16 reserved[3];
	__u64 cgroup_id; /* the issuer's cgroup when config.per_cgroup is set, else 0 */
};

struct hist_val {
	__u64 slots[AOD_HIST_SLOTS]; /* request counts; see AOD_HIST_SLOTS */
	__u64 sum_ns;                /* sum of the latencies counted */
};

/* Per-command latency threshold; zero value: not tracked (no slow events). */
struct threshold {
	__u64 ns; /* slow when latency >= ns */
	__u32 enabled;
	__u32 reserved;
};

struct config {
	__u32 track_all_failures; /* non-zero: every failure is an error event */
	__u32 per_cgroup;         /* SMB: non-zero: histograms and error counts per issuer cgroup too */
};

/*
 * NFS procedure codes, the command codes of NFS records, keys and thresholds
 * (internal/nfs names them): an NFSv4 RPC keeps the client's procedure index
 * (NFSPROC4_CLNT_*, the rpc_procinfo's p_statidx: 0..AOD_NFS_V3_BASE-1); NFSv3
 * procedure p is AOD_NFS_V3_BASE + p; NFSACL v3 procedure p is AOD_NFS_ACL3_BASE + p;
 * any other procedure of the NFS programs (NFSv2, an index out of range) is
 * AOD_NFS_OTHER. AOD_NFS_NUM_COMMANDS is proto.MaxCommands.
 */
#define AOD_NFS_V3_BASE 96
#define AOD_NFS_ACL3_BASE 120
#define AOD_NFS_OTHER 127
#define AOD_NFS_NUM_COMMANDS 128

/* RPC program numbers the NFS programs measure; other RPC clients (rpcbind, mountd,
 * lockd, statd, nfsd's callbacks) are not NFS client RPCs. */
#define AOD_RPC_PROG_NFS 100003
#define AOD_RPC_PROG_NFSACL 100227

/*
 * Key of the "nfs_histograms" and "nfs_errors" maps: one series per (RPC client,
 * procedure, status). The RPC client (rpc_clnt's cl_clid, the task:ID@CLIENT of the
 * sunrpc trace) is one mount's (each nfs_server clones its own), or an NFSv4
 * server's lease and session management for nfs_client's own. status: the NFS status
 * (NFS3ERR_* / NFS4ERR_*, from nfs_xdr_status / nfs4_xdr_status, or left raw in the
 * task's status below -4095), or for a failure with none the task's status (a
 * negative errno) as a u32; 0: succeeded.
 */
struct nfs_key {
	__u32 client_id;
	__u32 status;
	__u16 command;
	__u16 reserved[3];
};

/* A histogram plus the transport work behind its RPCs, as /proc/self/mountstats
 * counts it per operation: transmissions beyond the first, and major timeouts. */
struct nfs_hist_val {
	struct hist_val hist;
	__u64 retransmissions;
	__u64 timeouts;
};

/* The NFS status a reply carried, noted by nfs*_xdr_status for its task until the
 * task's rpc_stats_latency (key: the task's address). xid tells a later task at the
 * same address from the one whose reply failed. */
struct nfs_reply_status {
	__u32 xid;    /* rq_xid, as on the wire */
	__u32 status; /* NFS3ERR_* / NFS4ERR_* */
	__u32 op;     /* NFSv4: the operation that failed (OP_*); NFSv3: 0 */
	__u32 reserved;
};

/*
 * io (failed file operations): one program on the raw syscall exit. The loader writes
 * the system calls that perform io operations into "io_syscalls", indexed by syscall
 * number; op_plus1 == 0 marks a call that is not one. The file a call used is found
 * through an argument: a file descriptor (AOD_IO_ARG_FD), or a path relative to a
 * directory descriptor or the working directory (AOD_IO_ARG_PATH). alt_op replaces the
 * operation when the argument flag_arg has a bit of flag_mask set (open with O_CREAT is
 * CREATE, unlinkat with AT_REMOVEDIR is RMDIR); AOD_IO_F_LOCK_CMD makes flag_arg a
 * fcntl command that must be a lock command. Arguments are numbered 0..5; 0xff: none.
 */
#define AOD_IO_MAX_SYSCALLS 512
#define AOD_IO_NUM_OPS 32
#define AOD_IO_MAX_ERRNO 256
#define AOD_IO_PATH_MAX 128
#define AOD_IO_NO_ARG 0xff

enum aod_io_arg {
	AOD_IO_ARG_NONE = 0, /* no file (munmap): the mount is unknown */
	AOD_IO_ARG_FD = 1,
	AOD_IO_ARG_PATH = 2,
};

#define AOD_IO_F_LOCK_CMD 1

struct io_syscall {
	__u8 op_plus1;
	__u8 alt_op_plus1;
	__u8 arg;       /* enum aod_io_arg */
	__u8 fd_arg;    /* AOD_IO_ARG_FD: the descriptor; AOD_IO_ARG_PATH: the directory one */
	__u8 path_arg;  /* AOD_IO_ARG_PATH */
	__u8 flag_arg;
	__u8 flags;     /* AOD_IO_F_* */
	__u8 reserved;
	__u32 flag_mask;
};

/* Key of the "io_errors" counts: one per (mount, operation, errno). mnt_id is the
 * mount's id as /proc/self/mountinfo lists it (0: unknown), magic its super block's
 * s_magic (the file system type). */
struct io_key {
	__u32 mnt_id;
	__u32 magic;
	__u16 err;
	__u16 op;
	__u32 reserved;
};

/* A mount in scope, the value of "io_mounts" (keyed by mount point) and the result of
 * attributing a failure. */
struct io_mount {
	__u32 mnt_id;
	__u32 magic;
};

/* Key of "io_mounts", an LPM trie: a mount point with a trailing '/', prefixlen its
 * length in bits; a path's longest matching mount point is the mount it is on. */
struct io_path_key {
	__u32 prefixlen;
	__u8 path[AOD_IO_PATH_MAX];
};

struct io_config {
	__u32 scope_all;   /* non-zero: every mount is in scope ("io_magics" unused) */
	__u32 track_all;   /* non-zero: every failure in scope is an error record */
};

/*
 * io records (protocol AOD_PROTO_IO), one failed system call, same layout:
 *     0    8 start_ns    == end_ns
 *     8    8 end_ns      sys_exit time
 *    16    8 session_id  mount id (0: unknown)
 *    24    8 mid         system call number
 *    32    8 conn_id     0
 *    40    4 pid, 44 tgid, 64 comm, 144 cgroup_id: the calling task
 *    48    4 tree_id     the file system's magic (s_magic)
 *    52    4 status      errno
 *    56    4 rc          -errno
 *    60    2 command     io operation code (internal/io)
 *    80   64 server      path-based calls: the path argument as passed (truncated)
 */

/*
 * One ring-buffer record, 152 bytes, little-endian, all fields naturally aligned:
 *
 *   off size field
 *     0    8 start_ns    enter time; == end_ns when no enter was seen (orphan error)
 *     8    8 end_ns      completion time, or when a connection event fired
 *    16    8 session_id  request events
 *    24    8 mid         request: SMB MessageId; smb3_reconnect: the connection's current mid
 *    32    8 conn_id     connection events
 *    40    4 pid         request: thread that issued it (0 if unknown); connection: current
 *    44    4 tgid
 *    48    4 tree_id     request events
 *    52    4 status      NTSTATUS of a failed request, else 0
 *    56    4 rc          smb3_cmd_err: -errno the status maps to; smb3_connect_err: rc
 *    60    2 command     SMB2 command code
 *    62    1 kind        enum event_kind
 *    63    1 protocol    enum aod_protocol
 *    64   16 comm        NUL-padded task name
 *    80   64 server      connection events: server host name, NUL-terminated
 *   144    8 cgroup_id   request events: cgroup v2 id of the task that issued it (the
 *                        cgroup directory's inode number; 0 if unknown)
 *
 * NFS records (protocol AOD_PROTO_NFS) use the same layout for one RPC:
 *     0    8 start_ns    end_ns - the kernel's execute time (task start to completion)
 *     8    8 end_ns      rpc_stats_latency time
 *    16    8 session_id  RPC client id (cl_clid), see struct nfs_key
 *    24    8 mid         bits 0-31 xid (host order); 32-39 RPC version (3, 4);
 *                        40-47 retransmissions (capped at 255); 48-63 major timeouts
 *    32    8 conn_id     transport id (rpc_xprt's id, the trace's xprt_id)
 *    40    4 pid         issuing thread if it completes the RPC itself, else 0
 *    44    4 tgid        process that created the task (tk_owner)
 *    48    4 tree_id     NFSv4: the operation the NFS status came with (OP_*), else 0
 *    52    4 status      NFS status (NFS3ERR_* / NFS4ERR_*), 0 if none
 *    56    4 rc          the task's status: < 0 failed (-errno, or -NFS4ERR_* left raw)
 *    60    2 command     NFS procedure code (AOD_NFS_*)
 *    64   16 comm        issuing thread's name if pid != 0
 *    80   64 server      the transport's server address (RPC_DISPLAY_ADDR), e.g. "127.0.0.1"
 *   144    8 cgroup_id   the issuing thread's cgroup if pid != 0, else 0 (user space
 *                        resolves the owner's from /proc/<tgid>/cgroup)
 * NFS connection records (rpc_socket_connect to the NFS port): kind connect (error 0
 * or -EINPROGRESS) or connect error, conn_id the transport id, rc the error, server
 * its address, pid/tgid/comm the current task, start_ns == end_ns.
 */
struct event {
	__u64 start_ns;
	__u64 end_ns;
	__u64 session_id;
	__u64 mid;
	__u64 conn_id;
	__u32 pid;
	__u32 tgid;
	__u32 tree_id;
	__u32 status;
	__s32 rc;
	__u16 command;
	__u8 kind;
	__u8 protocol;
	__u8 comm[16];
	__u8 server[64];
	__u64 cgroup_id;
};

#endif /* AOD_H */
