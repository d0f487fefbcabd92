// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore
/*
 * aod's NFS client probes: raw tracepoint programs on the sunrpc and nfs modules.
 * One RPC is one rpc_stats_latency: the kernel fires it once per completed RPC (per
 * attempt of a restarted one), in rpc_exit_task, with the execute time it measured
 * from the task's start, and /proc/self/mountstats counts exactly these. So there is
 * no start to record and nothing to pair: per RPC, in the kernel, read the task's
 * client, procedure, status and transport counters, count the latency into a
 * per-(client, procedure, status) histogram, count failures, and pass only slow or
 * failed RPCs (thresholds and failure sets in this object's maps) to the ring the SMB
 * programs write, with protocol AOD_PROTO_NFS.
 *
 * The NFS status of a failed reply (NFS3ERR_*, NFS4ERR_*) is only in the nfs and nfs4
 * modules' xdr_status tracepoints, which fire while the reply is decoded, before the
 * RPC completes, and only for failures: they note it per task for rpc_stats_latency.
 * An RPC that fails before it has a request slot (rpc_call_rpcerror with no tk_rqstp)
 * never reaches rpc_stats_latency, and is recorded there.
 *
 * The arguments are struct pointers, read with CO-RE (bpf_core_read.h) against the
 * running kernel's BTF for sunrpc: the loader loads this object once the module is
 * there. The structures below name only the fields read; their layout comes from the
 * kernel's BTF at load time. Map and record layout: include/aod.h; notes: README.md.
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "aod.h"
#include "aod_hist.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#include "aod_ring.h"

/* The server port of the transports whose connections are reported (NFS: 2049). Set
 * by the loader before load. */
const volatile __u16 nfs_port = 2049;

#define EINPROGRESS 115

/* include/linux/sunrpc/{sched,clnt,xprt,xdr}.h, fields aod reads. */
struct rpc_procinfo {
	__u32 p_statidx; /* the client's procedure index: NFSPROC4_CLNT_* for NFSv4 */
} __attribute__((preserve_access_index));

struct rpc_message {
	const struct rpc_procinfo *rpc_proc;
} __attribute__((preserve_access_index));

struct rpc_clnt {
	unsigned int cl_clid;
	__u32 cl_prog;
	__u32 cl_vers;
} __attribute__((preserve_access_index));

/* The leading bytes of a struct sockaddr_in or sockaddr_in6. */
struct aod_sockaddr {
	__u16 family;
	__u16 port; /* big-endian */
};

/* include/linux/rbtree_types.h: only whether the tree is empty matters. */
struct rb_root {
	void *rb_node; /* NULL: empty */
} __attribute__((preserve_access_index));

struct rpc_xprt {
	const char *address_strings[1]; /* [RPC_DISPLAY_ADDR] */
	unsigned int id;
	struct aod_sockaddr addr; /* struct sockaddr_storage: the server's address */
	struct rb_root recv_queue; /* requests sent and awaiting their reply */
} __attribute__((preserve_access_index));

struct rpc_task;

struct rpc_rqst {
	struct rpc_task *rq_task;
	__u32 rq_xid; /* __be32 */
	int rq_ntrans;
} __attribute__((preserve_access_index));

struct rpc_task {
	int tk_status;
	struct rpc_message tk_msg;
	struct rpc_clnt *tk_client;
	struct rpc_xprt *tk_xprt;
	struct rpc_rqst *tk_rqstp;
	__s64 tk_start; /* ktime_t */
	int tk_owner;   /* pid_t: the tgid that created the task */
	unsigned short tk_timeouts;
} __attribute__((preserve_access_index));

struct xdr_stream {
	struct rpc_rqst *rqst;
} __attribute__((preserve_access_index));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 512);
	__type(key, struct nfs_key);
	__type(value, struct nfs_hist_val);
} nfs_histograms SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct nfs_key);
	__type(value, __u64);
} nfs_errors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AOD_NFS_NUM_COMMANDS);
	__type(key, __u32);
	__type(value, struct threshold);
} nfs_thresholds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} nfs_tracked_statuses SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __s32);
	__type(value, __u8);
} nfs_tracked_errnos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} nfs_config SEC(".maps");

/* NFSv4 client procedure index -> procedure code. Kernels number their procedures
 * differently (7.3 inserted ZERO_RANGE after DEALLOCATE): the loader writes the
 * running kernel's translation, the identity for 6.1 and 6.12. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AOD_NFS_V3_BASE);
	__type(key, __u32);
	__type(value, __u16);
} nfs4_codes SEC(".maps");

/* Task address -> the NFS status its reply failed with, until its rpc_stats_latency.
 * LRU: a status whose RPC still succeeded (the client handled it) is never taken,
 * and ages out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct nfs_reply_status);
} nfs_reply_statuses SEC(".maps");

/* Transport id -> how its last connection ended (AOD_KIND_LOST or AOD_KIND_CLOSED), kept until the
 * transport's next connect, which it makes a reconnect or not. A new transport clears
 * its id (the kernel reuses the ids of destroyed ones); LRU: a transport that never
 * connects again (unmounted) ages out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u8);
} nfs_xprt_ends SEC(".maps");

/* Referenced only so that the types reach BTF and bpf2go writes them out for Go. */
const struct nfs_key *unused_nfs_key __attribute__((unused));
const struct nfs_hist_val *unused_nfs_hist_val __attribute__((unused));
const struct nfs_reply_status *unused_nfs_reply_status __attribute__((unused));

/* Value a new histogram entry starts from (read-only, never written). */
static const struct nfs_hist_val zero_nfs_hist;

/* nfs_command maps an RPC's (program, version, procedure index) to its code
 * (AOD_NFS_*). */
static __always_inline __u16 nfs_command(__u32 prog, __u32 vers, __u32 idx)
{
	__u16 *code;

	if (prog == AOD_RPC_PROG_NFS) {
		if (vers == 4 && idx < AOD_NFS_V3_BASE) {
			code = bpf_map_lookup_elem(&nfs4_codes, &idx);
			return code ? *code : AOD_NFS_OTHER;
		}
		if (vers == 3 && idx < AOD_NFS_ACL3_BASE - AOD_NFS_V3_BASE)
			return AOD_NFS_V3_BASE + idx;
	} else if (vers == 3 && idx < AOD_NFS_OTHER - AOD_NFS_ACL3_BASE) {
		return AOD_NFS_ACL3_BASE + idx;
	}
	return AOD_NFS_OTHER;
}

/* The transport work of one RPC: retransmissions and major timeouts. */
struct rpc_work {
	__u32 retransmissions;
	__u32 timeouts;
};

/*
 * record_rpc measures one completed NFS RPC: task is the kernel's rpc_task, rc its
 * status (< 0: failed), now the completion time, latency_ns how long before it the
 * task started, work what the transport did for it. Only the fields every RPC needs are read before the filter;
 * the rest only for a record that crosses the ring.
 */
static __always_inline int record_rpc(const struct rpc_task *task, __s32 rc, __u64 now, __u64 latency_ns,
				      const struct rpc_work *work)
{
	__u64 tkey = (__u64)task, pid_tgid;
	const struct rpc_clnt *clnt = BPF_CORE_READ(task, tk_client);
	struct nfs_key key = {};
	struct nfs_reply_status *rs;
	struct nfs_hist_val *h;
	struct event *e;
	__u32 prog, vers, op = 0, nfs_status = 0, xid;
	__u8 kind = 0;
	int owner;

	prog = BPF_CORE_READ(clnt, cl_prog);
	if (prog != AOD_RPC_PROG_NFS && prog != AOD_RPC_PROG_NFSACL)
		return 0;
	vers = BPF_CORE_READ(clnt, cl_vers);
	key.client_id = BPF_CORE_READ(clnt, cl_clid);
	key.command = nfs_command(prog, vers, BPF_CORE_READ(task, tk_msg.rpc_proc, p_statidx));
	if (rc < 0) {
		/* The NFS status, if the reply carried one; else the task's -errno. */
		rs = bpf_map_lookup_elem(&nfs_reply_statuses, &tkey);
		if (rs) {
			if (rs->xid == BPF_CORE_READ(task, tk_rqstp, rq_xid)) {
				nfs_status = rs->status;
				op = rs->op;
			}
			bpf_map_delete_elem(&nfs_reply_statuses, &tkey);
		}
		/* The client leaves some NFSv4 statuses raw in tk_status (-NFS4ERR_GRACE,
		 * -10013): no errno is that large (MAX_ERRNO 4095). */
		if (!nfs_status && rc < -4095)
			nfs_status = -rc;
		key.status = nfs_status ? nfs_status : (__u32)rc;
	}

	h = lookup_or_create(&nfs_histograms, &key, &zero_nfs_hist, AOD_CTR_HIST_FULL);
	if (h) {
		hist_add(&h->hist, latency_ns);
		if (work->retransmissions)
			__sync_fetch_and_add(&h->retransmissions, work->retransmissions);
		if (work->timeouts)
			__sync_fetch_and_add(&h->timeouts, work->timeouts);
	}
	if (rc < 0) {
		count_in(&nfs_errors, &key);
		if (failure_selected(&nfs_config, &nfs_tracked_statuses, &nfs_tracked_errnos, key.status, rc))
			kind = AOD_KIND_ERROR;
	}
	if (!kind && over_threshold(&nfs_thresholds, key.command, latency_ns))
		kind = AOD_KIND_SLOW;
	if (!kind) {
		count(AOD_CTR_FILTERED);
		return 0;
	}

	e = reserve_record(kind, AOD_PROTO_NFS, now);
	if (!e)
		return 0;
	xid = __builtin_bswap32(BPF_CORE_READ(task, tk_rqstp, rq_xid));
	e->start_ns = now > latency_ns ? now - latency_ns : 0;
	e->session_id = key.client_id;
	e->mid = xid | (__u64)(vers & 0xff) << 32 | (__u64)(work->retransmissions > 255 ? 255 : work->retransmissions) << 40 |
		 (__u64)(work->timeouts > 0xffff ? 0xffff : work->timeouts) << 48;
	e->conn_id = BPF_CORE_READ(task, tk_xprt, id);
	owner = BPF_CORE_READ(task, tk_owner);
	pid_tgid = bpf_get_current_pid_tgid();
	e->tgid = owner;
	if ((__u32)(pid_tgid >> 32) == (__u32)owner) {
		/* The issuer completes its own synchronous RPC; async ones end in rpciod. */
		e->pid = (__u32)pid_tgid;
		e->cgroup_id = bpf_get_current_cgroup_id();
		bpf_get_current_comm(e->comm, sizeof(e->comm));
	}
	e->tree_id = op;
	e->status = nfs_status;
	e->rc = rc;
	e->command = key.command;
	/* Leaves an empty string if the address cannot be read. */
	bpf_probe_read_kernel_str(e->server, sizeof(e->server), BPF_CORE_READ(task, tk_xprt, address_strings[0]));
	submit_event(e);
	return 0;
}

SEC("raw_tp/rpc_stats_latency")
int aod_rpc_stats(struct bpf_raw_tracepoint_args *ctx)
{
	/* TP_PROTO(const struct rpc_task *task, ktime_t backlog, ktime_t rtt, ktime_t execute) */
	const struct rpc_task *task = (const void *)ctx->args[0];
	__s64 execute = (__s64)ctx->args[3];
	struct rpc_work work = {};
	int ntrans = BPF_CORE_READ(task, tk_rqstp, rq_ntrans);

	work.retransmissions = ntrans > 1 ? ntrans - 1 : 0;
	work.timeouts = BPF_CORE_READ(task, tk_timeouts);
	return record_rpc(task, BPF_CORE_READ(task, tk_status), bpf_ktime_get_ns(), execute > 0 ? execute : 0, &work);
}

SEC("raw_tp/rpc_call_rpcerror")
int aod_rpc_error(struct bpf_raw_tracepoint_args *ctx)
{
	/* TP_PROTO(const struct rpc_task *task, int tk_status, int rpc_status) */
	const struct rpc_task *task = (const void *)ctx->args[0];
	struct rpc_work work = {};
	__s64 start;
	__u64 now;

	/* With a request, rpc_stats_latency follows and records the RPC. */
	if (BPF_CORE_READ(task, tk_rqstp))
		return 0;
	start = BPF_CORE_READ(task, tk_start);
	now = bpf_ktime_get_ns();
	return record_rpc(task, (__s32)ctx->args[1], now, start > 0 && now > (__u64)start ? now - start : 0, &work);
}

/* note_reply_status keeps the NFS status of a reply being decoded for its task. */
static __always_inline int note_reply_status(const struct xdr_stream *xdr, __u32 op, __s32 error)
{
	const struct rpc_rqst *rq = BPF_CORE_READ(xdr, rqst);
	struct nfs_reply_status v = { .op = op };
	__u64 task;

	if (!rq)
		return 0;
	task = (__u64)BPF_CORE_READ(rq, rq_task);
	v.xid = BPF_CORE_READ(rq, rq_xid);
	/* Passed as the raw status (int on older kernels, u32 since); never negative. */
	v.status = error < 0 ? -error : error;
	bpf_map_update_elem(&nfs_reply_statuses, &task, &v, BPF_ANY);
	return 0;
}

SEC("raw_tp/nfs4_xdr_status")
int aod_nfs4_xdr_status(struct bpf_raw_tracepoint_args *ctx)
{
	/* TP_PROTO(const struct xdr_stream *xdr, u32 op, u32 error) */
	return note_reply_status((const void *)ctx->args[0], (__u32)ctx->args[1], (__s32)ctx->args[2]);
}

SEC("raw_tp/nfs_xdr_status")
int aod_nfs_xdr_status(struct bpf_raw_tracepoint_args *ctx)
{
	/* TP_PROTO(const struct xdr_stream *xdr, int error) */
	return note_reply_status((const void *)ctx->args[0], 0, (__s32)ctx->args[1]);
}

/* nfs_server_xprt tells whether xprt is a transport to the NFS server's port: every
 * RPC client has transports (rpcbind, mountd, lockd). */
static __always_inline int nfs_server_xprt(const struct rpc_xprt *xprt)
{
	struct aod_sockaddr sa = {};

	return !bpf_probe_read_kernel(&sa, sizeof(sa), (const void *)xprt + bpf_core_field_offset(xprt->addr)) &&
	       __builtin_bswap16(sa.port) == nfs_port;
}

/* report_xprt passes a connection event of xprt (transport id) to the ring: kind,
 * rc the connect's error, the task that fired it. */
static __always_inline void report_xprt(__u8 kind, const struct rpc_xprt *xprt, __u32 id, __s32 rc)
{
	__u64 pid_tgid;
	struct event *e;

	e = reserve_record(kind, AOD_PROTO_NFS, bpf_ktime_get_ns());
	if (!e)
		return;
	pid_tgid = bpf_get_current_pid_tgid();
	e->start_ns = e->end_ns;
	e->conn_id = id;
	e->rc = rc;
	e->pid = (__u32)pid_tgid;
	e->tgid = pid_tgid >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	/* Leaves an empty string if the address cannot be read. */
	bpf_probe_read_kernel_str(e->server, sizeof(e->server), BPF_CORE_READ(xprt, address_strings[0]));
	submit_event(e);
}

/* note_end records how xprt's connection ended (AOD_KIND_LOST or AOD_KIND_CLOSED)
 * and reports it. A connection ends once but its end fires several tracepoints (a
 * server's close forces a disconnect, which schedules the autoclose; the client's own
 * close reaches TCP_CLOSE, which forces one): the first says why, the rest are its
 * teardown. */
static __always_inline int note_end(const struct rpc_xprt *xprt, __u8 end)
{
	__u32 id;

	if (!nfs_server_xprt(xprt))
		return 0;
	id = BPF_CORE_READ(xprt, id);
	if (!bpf_map_update_elem(&nfs_xprt_ends, &id, &end, BPF_NOEXIST))
		report_xprt(end, xprt, id, 0);
	return 0;
}

SEC("raw_tp/xprt_create")
int aod_nfs_xprt_create(struct bpf_raw_tracepoint_args *ctx)
{
	/* TP_PROTO(const struct rpc_xprt *xprt): a new transport; its id may be that of
	 * one destroyed after a loss. */
	const struct rpc_xprt *xprt = (const void *)ctx->args[0];
	__u32 id = BPF_CORE_READ(xprt, id);

	bpf_map_delete_elem(&nfs_xprt_ends, &id);
	return 0;
}

SEC("raw_tp/xprt_disconnect_force")
int aod_nfs_disconnect_force(struct bpf_raw_tracepoint_args *ctx)
{
	/* TP_PROTO(const struct rpc_xprt *xprt): the server closed the connection
	 * (TCP_CLOSE_WAIT), the socket failed, or a connect failed. */
	return note_end((const void *)ctx->args[0], AOD_KIND_LOST);
}

SEC("raw_tp/xprt_disconnect_auto")
int aod_nfs_disconnect_auto(struct bpf_raw_tracepoint_args *ctx)
{
	/* TP_PROTO(const struct rpc_xprt *xprt): the client closes the connection, after
	 * five idle minutes (the idle timer only fires with no request awaiting a reply)
	 * or because it gave up on it (requests awaiting replies are lost with it). */
	const struct rpc_xprt *xprt = (const void *)ctx->args[0];
	void *waiting = NULL;

	bpf_core_read(&waiting, sizeof(waiting), &xprt->recv_queue.rb_node);
	return note_end(xprt, waiting ? AOD_KIND_LOST : AOD_KIND_CLOSED);
}

SEC("raw_tp/rpc_socket_connect")
int aod_nfs_connect(struct bpf_raw_tracepoint_args *ctx)
{
	/* TP_PROTO(struct rpc_xprt *xprt, struct socket *socket, int error) */
	const struct rpc_xprt *xprt = (const void *)ctx->args[0];
	__s32 error = (__s32)ctx->args[2];
	__u8 kind = AOD_KIND_CONNECT_ERROR, *end;
	__u32 id;

	if (!nfs_server_xprt(xprt))
		return 0;
	id = BPF_CORE_READ(xprt, id);
	/* A TCP connect is non-blocking: -EINPROGRESS is a connect under way, not a failure.
	 * It is a reconnect when the server or the network ended the transport's last
	 * connection: the client reconnects from the same source port, so the TCP table
	 * looks the same before and after, and only this tells. After an idle close it is
	 * everyday traffic. */
	if (error == 0 || error == -EINPROGRESS) {
		end = bpf_map_lookup_elem(&nfs_xprt_ends, &id);
		kind = end && *end == AOD_KIND_LOST ? AOD_KIND_RECONNECT : AOD_KIND_CONNECT;
	}
	bpf_map_delete_elem(&nfs_xprt_ends, &id);
	report_xprt(kind, xprt, id, error);
	return 0;
}
