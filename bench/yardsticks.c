// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore
/*
 * Yardsticks aod's enter+done pair is measured against, each a pair of raw-tracepoint
 * programs on smb3_cmd_enter/done's arguments (tid, sesid, cmd, mid):
 *
 * - minimal: the cheapest probe a request could have; each program only bumps a
 *   per-CPU counter. No pairing, no histogram, no filter.
 * - clock: each program only reads the clock, as any probe that measures latency must.
 * - floor: the least a pair that measures latency can do. Enter reads the clock and
 *   stores the start in an array slot under the request's identity; done reads the
 *   clock, finds and frees the start and counts the latency into one histogram (a
 *   shared hash value with atomic adds, as aod's). No second way, no task, no filters.
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include "aod.h"
#include "aod_hist.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} minimal_counts SEC(".maps");

static __always_inline void bump(__u32 idx)
{
	__u64 *n = bpf_map_lookup_elem(&minimal_counts, &idx);

	if (n)
		*n += 1;
}

SEC("raw_tp/smb3_cmd_enter")
int minimal_enter(struct bpf_raw_tracepoint_args *ctx)
{
	bump(0);
	return 0;
}

SEC("raw_tp/smb3_cmd_done")
int minimal_done(struct bpf_raw_tracepoint_args *ctx)
{
	bump(1);
	return 0;
}

/* Run for both ends of the clock pair. */
SEC("raw_tp/smb3_cmd_enter")
int clock_only(struct bpf_raw_tracepoint_args *ctx)
{
	return bpf_ktime_get_ns() & 1;
}

struct floor_start {
	__u64 start_ns;
	__u64 session_id;
	__u64 mid;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct floor_start);
} floor_starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct req_key);
	__type(value, struct hist_val);
} floor_hist SEC(".maps");

static const struct hist_val floor_zero_hist;

static __always_inline void floor_count(__u64 session_id, __u16 command, __u64 latency_ns)
{
	struct req_key key = { .session_id = session_id, .command = command };
	struct hist_val *h = bpf_map_lookup_elem(&floor_hist, &key);
	__u32 slot;

	if (!h) {
		bpf_map_update_elem(&floor_hist, &key, &floor_zero_hist, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&floor_hist, &key);
		if (!h)
			return;
	}
	slot = aod_hist_slot(latency_ns);
	if (slot < AOD_HIST_SLOTS)
		__sync_fetch_and_add(&h->slots[slot], 1);
	__sync_fetch_and_add(&h->sum_ns, latency_ns);
}

SEC("raw_tp/smb3_cmd_enter")
int floor_enter(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 i = (__u32)ctx->args[3] & 65535;
	struct floor_start *s = bpf_map_lookup_elem(&floor_starts, &i);

	if (!s)
		return 0;
	s->session_id = ctx->args[1];
	s->mid = ctx->args[3];
	s->start_ns = bpf_ktime_get_ns();
	return 0;
}

SEC("raw_tp/smb3_cmd_done")
int floor_done(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 now = bpf_ktime_get_ns();
	__u32 i = (__u32)ctx->args[3] & 65535;
	struct floor_start *s = bpf_map_lookup_elem(&floor_starts, &i);
	__u64 start;

	if (!s || !s->start_ns || s->session_id != ctx->args[1] || s->mid != ctx->args[3])
		return 0;
	start = s->start_ns;
	s->start_ns = 0;
	floor_count(ctx->args[1], (__u16)ctx->args[2], now - start);
	return 0;
}
