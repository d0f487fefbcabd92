// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore
/*
 * aod's SMB request probes: raw tracepoint programs on the cifs module's
 * smb3_cmd_enter/done/err and connection tracepoints. Per request, in the kernel:
 * pair enter with completion, measure latency, count it into a per-(command, session,
 * tree, NTSTATUS) histogram, count failures, and pass only slow or failed requests
 * (by thresholds and failure sets user space writes into maps) to the ring buffer.
 * Map and record layout: include/aod.h; design notes: README.md.
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include "aod.h"
#include "aod_hist.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#include "aod_requests.h"

/* Referenced only so that the types reach BTF and bpf2go writes them out for Go. */
const struct event *unused_event __attribute__((unused));
const enum event_kind *unused_event_kind __attribute__((unused));
const enum counter *unused_counter __attribute__((unused));

SEC("raw_tp/smb3_cmd_enter")
int aod_cmd_enter(struct bpf_raw_tracepoint_args *ctx)
{
	/* TP_PROTO(__u32 tid, __u64 sesid, __u16 cmd, __u64 mid) */
	return record_start((__u32)ctx->args[0], ctx->args[1], (__u16)ctx->args[2], ctx->args[3]);
}

/* Shared by smb3_cmd_done (failed = 0) and smb3_cmd_err (failed = 1), whose
 * TP_PROTO is (__u32 tid, __u64 sesid, __u16 cmd, __u64 mid[, __u32 status, int rc]). */
static __always_inline int on_completion(struct bpf_raw_tracepoint_args *ctx, int failed)
{
	return record_completion((__u32)ctx->args[0], ctx->args[1], (__u16)ctx->args[2], ctx->args[3],
				 failed ? (__u32)ctx->args[4] : 0, failed ? (__s32)ctx->args[5] : 0, failed);
}

SEC("raw_tp/smb3_cmd_done")
int aod_cmd_done(struct bpf_raw_tracepoint_args *ctx)
{
	return on_completion(ctx, 0);
}

SEC("raw_tp/smb3_cmd_err")
int aod_cmd_err(struct bpf_raw_tracepoint_args *ctx)
{
	return on_completion(ctx, 1);
}

static __always_inline int on_connection(__u8 kind, __u64 conn_id, const char *hostname, __u64 mid, __s32 rc)
{
	struct event *e = reserve_event(kind, bpf_ktime_get_ns());
	__u64 pid_tgid;

	if (!e)
		return 0;
	pid_tgid = bpf_get_current_pid_tgid();
	e->start_ns = e->end_ns;
	e->conn_id = conn_id;
	e->mid = mid;
	e->rc = rc;
	e->pid = (__u32)pid_tgid;
	e->tgid = pid_tgid >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	/* Leaves an empty string if the pointer cannot be read. */
	bpf_probe_read_kernel_str(e->server, sizeof(e->server), hostname);
	submit_event(e);
	return 0;
}

SEC("raw_tp/smb3_reconnect")
int aod_reconnect(struct bpf_raw_tracepoint_args *ctx)
{
	/* TP_PROTO(__u64 currmid, __u64 conn_id, char *hostname) */
	return on_connection(AOD_KIND_RECONNECT, ctx->args[1], (const char *)ctx->args[2], ctx->args[0], 0);
}

SEC("raw_tp/smb3_connect_done")
int aod_connect_done(struct bpf_raw_tracepoint_args *ctx)
{
	/* TP_PROTO(char *hostname, __u64 conn_id, const struct __kernel_sockaddr_storage *addr) */
	return on_connection(AOD_KIND_CONNECT, ctx->args[1], (const char *)ctx->args[0], 0, 0);
}

SEC("raw_tp/smb3_connect_err")
int aod_connect_err(struct bpf_raw_tracepoint_args *ctx)
{
	/* TP_PROTO(char *hostname, __u64 conn_id, const struct __kernel_sockaddr_storage *addr, int rc) */
	return on_connection(AOD_KIND_CONNECT_ERROR, ctx->args[1], (const char *)ctx->args[0], 0,
			     (__s32)ctx->args[3]);
}
