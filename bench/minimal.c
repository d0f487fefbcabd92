// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore
/*
 * The cheapest probe a request could have, the yardstick aod's own pair is measured
 * against: an enter and a done raw-tracepoint program that each only bump a per-CPU
 * counter. No pairing, no histogram, no filter.
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>

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
