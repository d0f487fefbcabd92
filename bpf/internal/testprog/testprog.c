// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore
/*
 * Test-only programs, kept out of the production object: they run the production
 * bucket search on chosen latencies, fill the production ring fast, and count runs
 * of an attached program.
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include "aod.h"
#include "aod_hist.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Replaced at load time by the production ring (same type and size). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} runs SEC(".maps");

/* Returns aod_hist_slot(args[0]). */
SEC("raw_tp/aod_test_slot")
int aod_test_slot(struct bpf_raw_tracepoint_args *ctx)
{
	return aod_hist_slot(ctx->args[0]);
}

static long fill_one(__u64 i, void *emitted)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		return 1;
	__builtin_memset(e, 0, sizeof(*e));
	e->kind = AOD_KIND_SLOW;
	e->protocol = AOD_PROTO_SMB;
	e->command = 8;
	e->mid = i;
	e->start_ns = 1000;
	e->end_ns = 2000 + i;
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	*(__u64 *)emitted += 1;
	return 0;
}

/* Writes args[0] slow-request records without waking the reader; returns how many
 * fitted. */
SEC("raw_tp/aod_test_fill")
int aod_test_fill(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 emitted = 0;

	bpf_loop(ctx->args[0], fill_one, &emitted, 0);
	return emitted;
}

/* Does nothing: the fixed cost of running a program, for benchmarks. */
SEC("raw_tp/aod_test_empty")
int aod_test_empty(struct bpf_raw_tracepoint_args *ctx)
{
	return 0;
}

/* Counts its runs in runs[0]. */
SEC("raw_tp/aod_test_count")
int aod_test_count(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&runs, &zero);

	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

/* Kernel memory whose contents tests write (mmap) and whose address they learn
 * (aod_test_arena): fake kernel structures for the programs that read struct pointers. */
#define AOD_TEST_ARENA_BYTES 16384
struct arena_val {
	__u8 bytes[AOD_TEST_ARENA_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, AOD_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct arena_val);
} arena SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} arena_addr SEC(".maps");

/* Writes the kernel address of arena[0] into arena_addr[0] (root may read pointers). */
SEC("raw_tp/aod_test_arena")
int aod_test_arena(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 zero = 0;
	void *v = bpf_map_lookup_elem(&arena, &zero);
	__u64 *addr = bpf_map_lookup_elem(&arena_addr, &zero);

	if (v && addr)
		*addr = (__u64)v;
	return 0;
}

/*
 * Yardsticks for the kernel pair benchmark: the least a pair that measures latency
 * can do. Enter reads the clock and stores the start under the request's identity;
 * done reads the clock, finds and frees the start and counts the latency into one
 * histogram (a shared hash value with atomic adds, as aod's). The floor pair keeps
 * starts in an array slot (aod's starts table without the second way, the task and
 * the filters); the hash pair in a hash map (insert, then lookup and delete). The
 * minimal program is bench/minimal.c's: it only bumps a per-CPU counter.
 */
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

struct floor_id {
	__u64 session_id;
	__u64 mid;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct floor_id);
	__type(value, __u64);
} floor_start_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct req_key);
	__type(value, struct hist_val);
} floor_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} floor_minimal_count SEC(".maps");

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

/* smb3_cmd_enter/done's arguments: (tid, sesid, cmd, mid). */
SEC("raw_tp/aod_test_floor_enter")
int aod_test_floor_enter(struct bpf_raw_tracepoint_args *ctx)
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

SEC("raw_tp/aod_test_floor_done")
int aod_test_floor_done(struct bpf_raw_tracepoint_args *ctx)
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

SEC("raw_tp/aod_test_hash_enter")
int aod_test_hash_enter(struct bpf_raw_tracepoint_args *ctx)
{
	struct floor_id id = { .session_id = ctx->args[1], .mid = ctx->args[3] };
	__u64 now = bpf_ktime_get_ns();

	bpf_map_update_elem(&floor_start_hash, &id, &now, BPF_ANY);
	return 0;
}

SEC("raw_tp/aod_test_hash_done")
int aod_test_hash_done(struct bpf_raw_tracepoint_args *ctx)
{
	struct floor_id id = { .session_id = ctx->args[1], .mid = ctx->args[3] };
	__u64 now = bpf_ktime_get_ns();
	__u64 *start = bpf_map_lookup_elem(&floor_start_hash, &id);
	__u64 latency_ns;

	if (!start)
		return 0;
	latency_ns = now - *start;
	bpf_map_delete_elem(&floor_start_hash, &id);
	floor_count(ctx->args[1], (__u16)ctx->args[2], latency_ns);
	return 0;
}

SEC("raw_tp/aod_test_minimal")
int aod_test_minimal(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&floor_minimal_count, &zero);

	if (n)
		*n += 1;
	return 0;
}

/* Reads the clock only: what bpf_ktime_get_ns costs here. */
SEC("raw_tp/aod_test_clock")
int aod_test_clock(struct bpf_raw_tracepoint_args *ctx)
{
	return bpf_ktime_get_ns() & 1;
}
