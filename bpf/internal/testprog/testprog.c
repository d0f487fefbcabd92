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
