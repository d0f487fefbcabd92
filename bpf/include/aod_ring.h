/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What every protocol's programs share: the ring buffer and its wake-up policy, the
 * loss and activity counters, and the histogram and error-count updates on maps the
 * caller names. The SMB objects (aod.c, fallback.c, through aod_requests.h) and the
 * NFS object (nfs.c) include it; the loader makes the later-loaded objects use the
 * main object's ring, counters and wake-up sequence, so every record lands in one
 * ring and every loss in one set of counters.
 * Include after kernel.h, <bpf/bpf_helpers.h>, aod.h and aod_hist.h.
 */
#ifndef AOD_RING_H
#define AOD_RING_H

/* A record submit forces a reader wake-up every wakeup_every records per CPU (the
 * others are submitted with BPF_RB_NO_WAKEUP), or when the ring is half full. Set by
 * the loader before load. */
const volatile __u32 wakeup_every = 64;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AOD_NUM_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} wakeup_seq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

/* Atomic even though per-CPU: a protocol's completion programs are distinct programs
 * and may interleave on one CPU on preemptible kernels. */
static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);

	if (c)
		__sync_fetch_and_add(c, 1);
}

static __always_inline __u64 wakeup_flags(void)
{
	__u32 zero = 0;
	__u32 *seq = bpf_map_lookup_elem(&wakeup_seq, &zero);

	if (!seq)
		return BPF_RB_FORCE_WAKEUP;
	if (++*seq >= wakeup_every) {
		*seq = 0;
		return BPF_RB_FORCE_WAKEUP;
	}
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > bpf_ringbuf_query(&events, BPF_RB_RING_SIZE) / 2)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* reserve_record reserves a zeroed record of a protocol, or counts the loss. */
static __always_inline struct event *reserve_record(__u8 kind, __u8 protocol, __u64 now)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count(AOD_CTR_RING_FULL);
		return 0;
	}
	/* Ring memory is not zeroed: clear every byte, reserved and server included. */
	__builtin_memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->protocol = protocol;
	e->end_ns = now;
	return e;
}

static __always_inline void submit_event(struct event *e)
{
	bpf_ringbuf_submit(e, wakeup_flags());
	count(AOD_CTR_EMITTED);
}

/* lookup_or_create returns the value of key in a hash map, creating it from init
 * first if needed; when the map is full it counts full_counter and returns 0.
 * Entries are never overwritten: another CPU (or program) creating the same key
 * meanwhile (-EEXIST) is fine. */
static __always_inline void *lookup_or_create(void *map, const void *key, const void *init, __u32 full_counter)
{
	void *v = bpf_map_lookup_elem(map, key);
	long err;

	if (v)
		return v;
	err = bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	if (err && err != -EEXIST) {
		count(full_counter);
		return 0;
	}
	v = bpf_map_lookup_elem(map, key);
	if (!v)
		count(full_counter);
	return v;
}

/* hist_add counts one latency into a histogram (internal/latencyhist buckets), with
 * atomic adds: every CPU counts into the same value. */
static __always_inline void hist_add(struct hist_val *h, __u64 latency_ns)
{
	__u32 slot = aod_hist_slot(latency_ns);

	if (slot < AOD_HIST_SLOTS)
		__sync_fetch_and_add(&h->slots[slot], 1);
	__sync_fetch_and_add(&h->sum_ns, latency_ns);
}

/* Value a new count starts from (read-only, never written). */
static const __u64 zero_count;

/* count_in adds one to the u64 count of key in a hash map (AOD_CTR_ERRORS_FULL when
 * the map is full). */
static __always_inline void count_in(void *map, const void *key)
{
	__u64 *n = lookup_or_create(map, key, &zero_count, AOD_CTR_ERRORS_FULL);

	if (n)
		__sync_fetch_and_add(n, 1);
}

/* failure_selected reports whether a failure becomes an error event, by a protocol's
 * filter maps: its config says all failures do, or its status or errno (rc = -errno)
 * is in the tracked sets. */
static __always_inline int failure_selected(void *config_map, void *statuses, void *errnos, __u32 status, __s32 rc)
{
	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(config_map, &zero);
	__s32 err = -rc;

	if (cfg && cfg->track_all_failures)
		return 1;
	return bpf_map_lookup_elem(statuses, &status) || bpf_map_lookup_elem(errnos, &err);
}

/* over_threshold reports whether a latency is at or over its command's enabled
 * threshold in a protocol's threshold array. */
static __always_inline int over_threshold(void *thresholds, __u32 command, __u64 latency_ns)
{
	struct threshold *t = bpf_map_lookup_elem(thresholds, &command);

	return t && t->enabled && latency_ns >= t->ns;
}

#endif /* AOD_RING_H */
