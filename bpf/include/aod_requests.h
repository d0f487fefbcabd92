/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The request side of aod's programs, shared by the tracepoint programs (aod.c) and
 * the fallback programs on kernel functions (fallback.c): the maps, and what happens
 * when a request starts (record_start) and when its response status is mapped
 * (record_completion), given the values the cifs tracepoints carry. Both objects
 * define the same maps; the loader makes the fallback object use the main object's.
 * The ring, the counters and the histogram updates come from aod_ring.h.
 * Include after kernel.h, <bpf/bpf_helpers.h>, aod.h and aod_hist.h.
 */
#ifndef AOD_REQUESTS_H
#define AOD_REQUESTS_H

#include "aod_ring.h"

/* Buckets of the starts table minus one (a power of two minus one: the table has
 * twice as many slots). Set by the loader with the table size. */
const volatile __u32 start_bucket_mask = 32767;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, AOD_F_MMAPABLE);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct start_slot);
} starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AOD_RECENT_SLOTS);
	__type(key, __u32);
	__type(value, struct recent_slot);
} recent SEC(".maps");

/*
 * The histograms and error counts are shared by every CPU (atomic adds), not per-CPU:
 * a per-CPU value costs its size on every possible CPU, for every entry, whether the
 * CPU ever counts into it or not (about 1 KiB x CPUs per histogram). The loader makes
 * them allocate on insert (BPF_F_NO_PREALLOC) where the kernel allows it from tracing
 * programs (6.1+), so their memory follows the live series, not max_entries.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 512);
	__type(key, struct req_key);
	__type(value, struct hist_val);
} histograms SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct req_key);
	__type(value, __u64);
} errors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AOD_NUM_COMMANDS);
	__type(key, __u32);
	__type(value, struct threshold);
} thresholds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} tracked_statuses SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __s32);
	__type(value, __u8);
} tracked_errnos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} config SEC(".maps");

/* Value a new histogram entry starts from (read-only, never written). */
static const struct hist_val zero_hist;

/* reserve_event reserves a zeroed SMB record. */
static __always_inline struct event *reserve_event(__u8 kind, __u64 now)
{
	return reserve_record(kind, AOD_PROTO_SMB, now);
}

static __always_inline __u32 recent_index(__u64 session_id, __u64 mid, __u16 command)
{
	return (__u32)(((mid ^ (session_id * 0x9E3779B97F4A7C15ULL) ^ command) * 0xBF58476D1CE4E5B9ULL) >>
		       (64 - AOD_RECENT_BITS));
}

static __always_inline __u32 start_bucket(__u64 session_id, __u64 mid)
{
	return ((__u32)mid + (__u32)((session_id * 0x9E3779B97F4A7C15ULL) >> 32)) & start_bucket_mask;
}

static __always_inline int same_request(const struct start_slot *s, __u64 session_id, __u64 mid, __u16 command)
{
	return s->start_ns && s->session_id == session_id && s->mid == mid && s->command == command;
}

static __always_inline struct start_slot *find_start(__u64 session_id, __u64 mid, __u16 command)
{
	__u32 i = start_bucket(session_id, mid) * 2;
	struct start_slot *s = bpf_map_lookup_elem(&starts, &i);

	if (s && same_request(s, session_id, mid, command))
		return s;
	i++;
	s = bpf_map_lookup_elem(&starts, &i);
	if (s && same_request(s, session_id, mid, command))
		return s;
	return 0;
}

/* A request started: its mid was allocated, in the calling task
 * (smb3_cmd_enter's arguments, read from the request header). */
static __always_inline int record_start(__u32 tree_id, __u64 session_id, __u16 command, __u64 mid)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 i = start_bucket(session_id, mid) * 2, j = i + 1;
	struct start_slot *a = bpf_map_lookup_elem(&starts, &i);
	struct start_slot *b = bpf_map_lookup_elem(&starts, &j);
	struct start_slot *s;

	if (!a || !b)
		return 0;
	if (same_request(a, session_id, mid, command) || same_request(b, session_id, mid, command)) {
		/* Still in flight: a lost completion or a cross-connection collision.
		 * The newer request wins. */
		s = same_request(a, session_id, mid, command) ? a : b;
		count(AOD_CTR_START_COLLISION);
	} else if (!a->start_ns) {
		s = a;
	} else if (!b->start_ns) {
		s = b;
	} else {
		/* Both taken: the older entry, most likely one that will never complete,
		 * makes room. Its completion, if any, will be an orphan. */
		s = a->start_ns <= b->start_ns ? a : b;
		count(AOD_CTR_START_EVICTED);
	}
	/* Free while rewriting, so no completion matches a half-written entry. */
	s->start_ns = 0;
	s->session_id = session_id;
	s->mid = mid;
	s->command = command;
	s->reserved = 0;
	s->tree_id = tree_id;
	s->pid = (__u32)pid_tgid;
	s->tgid = pid_tgid >> 32;
	s->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(s->comm, sizeof(s->comm));
	s->start_ns = now ? now : 1;
	return 0;
}

static __always_inline void record_latency(const struct req_key *key, __u64 latency_ns)
{
	struct hist_val *h = lookup_or_create(&histograms, key, &zero_hist, AOD_CTR_HIST_FULL);

	if (h)
		hist_add(h, latency_ns);
}

static __always_inline void count_error(const struct req_key *key)
{
	count_in(&errors, key);
}

/* Whether a failure becomes an error event: all failures, or its NTSTATUS or the
 * errno the kernel mapped it to (rc = -errno) is in the tracked sets. */
static __always_inline int failure_tracked(__u32 status, __s32 rc)
{
	return failure_selected(&config, &tracked_statuses, &tracked_errnos, status, rc);
}

/* Whether the series are per issuer cgroup too (workloads.metric_attributes). */
static __always_inline int per_cgroup(void)
{
	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&config, &zero);

	return cfg && cfg->per_cgroup;
}

static __always_inline int is_slow(__u16 command, __u64 latency_ns)
{
	return over_threshold(&thresholds, command, latency_ns);
}

/* A chained request's slot, if s holds one: a later request of the same session in
 * the given mid, entered by the failed request's task since it entered. */
static __always_inline void release_if_chained(struct start_slot *s, __u64 session_id, __u64 mid,
					       const struct start_slot *failed)
{
	if (s && s->start_ns >= failed->start_ns && s->session_id == session_id && s->mid == mid &&
	    s->pid == failed->pid) {
		s->start_ns = 0;
		count(AOD_CTR_CHAIN_RELEASED);
	}
}

/*
 * A request failed (rc < 0) and its result was read by the task that sent it: a
 * synchronous request, the only kind the client compounds. compound_send_recv reads its
 * members' results in order and stops at the first that maps to an error, so the
 * members after it fire neither smb3_cmd_done nor smb3_cmd_err; they are dequeued and
 * freed right after (delete_mid), their responses unread. Their fate is known now: free
 * their entries. They are what this task entered since the failed request: the task has
 * been inside compound_send_recv since then (allocating the members' mids in a row under
 * the server lock, then waiting), so it entered nothing else. The mid range bounds the
 * search to the compound's mids; the task and start time keep out an unrelated request
 * with a nearby mid (another task's, or this task's from before, on another channel of
 * the session, whose mids are counted apart).
 */
static __always_inline void release_chained(__u64 session_id, __u64 mid, const struct start_slot *failed)
{
	for (__u32 k = 1; k <= AOD_CHAIN_MIDS; k++) {
		__u32 i = start_bucket(session_id, mid + k) * 2, j = i + 1;

		release_if_chained(bpf_map_lookup_elem(&starts, &i), session_id, mid + k, failed);
		release_if_chained(bpf_map_lookup_elem(&starts, &j), session_id, mid + k, failed);
	}
}

/* A response's status was mapped: smb3_cmd_done (failed = 0, status and rc 0) or
 * smb3_cmd_err (failed = 1) with their arguments, all read from the response header
 * except rc, the -errno the status maps to. */
static __always_inline int record_completion(__u32 resp_tree_id, __u64 session_id, __u16 command, __u64 mid,
					     __u32 status, __s32 rc, int failed)
{
	__u64 now = bpf_ktime_get_ns();
	struct start_slot *s, start;
	struct recent_slot *rs;
	/* The histogram and error map key; the tree id depends on the path taken. */
	struct req_key key = { .session_id = session_id, .status = status, .command = command };
	struct event *e;
	__u32 ri, tree_id;
	__u64 latency_ns;
	__u8 kind = 0;

	ri = recent_index(session_id, mid, command);
	s = find_start(session_id, mid, command);
	if (!s && command == AOD_SMB2_SESSION_SETUP && session_id)
		/* The first SESSION_SETUP leg is sent with session id 0; its response
		 * carries the new session id. */
		s = find_start(0, mid, command);
	if (!s) {
		rs = bpf_map_lookup_elem(&recent, &ri);
		if (rs && rs->valid && rs->session_id == session_id && rs->mid == mid && rs->command == command) {
			count(AOD_CTR_DOUBLE_DONE);
			return 0;
		}
		count(AOD_CTR_ORPHANS);
		if (!failed)
			return 0;
		/* No start, no latency; the failure still counts, and its event, if
		 * tracked, says "unknown start" with start_ns == end_ns. */
		key.tree_id = resp_tree_id;
		count_error(&key);
		if (!failure_tracked(status, rc)) {
			count(AOD_CTR_FILTERED);
			return 0;
		}
		e = reserve_event(AOD_KIND_ERROR, now);
		if (!e)
			return 0;
		e->start_ns = now;
		e->session_id = session_id;
		e->mid = mid;
		e->tree_id = resp_tree_id;
		e->status = status;
		e->rc = rc;
		e->command = command;
		submit_event(e);
		return 0;
	}

	/* Copy, then free the slot: the first completion wins, repeats find nothing. */
	start = *s;
	s->start_ns = 0;
	if (per_cgroup())
		key.cgroup_id = start.cgroup_id;
	rs = bpf_map_lookup_elem(&recent, &ri);
	if (rs) {
		rs->session_id = session_id;
		rs->mid = mid;
		rs->command = command;
		rs->valid = 1;
	}

	/* The request's tree id, unless it had none yet (TREE_CONNECT gets it in the
	 * response). The response's would be an AsyncId half for async responses. */
	tree_id = start.tree_id ? start.tree_id : resp_tree_id;
	latency_ns = now > start.start_ns ? now - start.start_ns : 0;
	key.tree_id = tree_id;
	record_latency(&key, latency_ns);
	if (failed) {
		count_error(&key);
		if (failure_tracked(status, rc))
			kind = AOD_KIND_ERROR;
		if (rc < 0 && start.pid == (__u32)bpf_get_current_pid_tgid())
			release_chained(session_id, mid, &start);
	}
	if (!kind && is_slow(command, latency_ns))
		kind = AOD_KIND_SLOW;
	if (!kind) {
		count(AOD_CTR_FILTERED);
		return 0;
	}

	e = reserve_event(kind, now);
	if (!e)
		return 0;
	e->start_ns = start.start_ns;
	e->session_id = session_id;
	e->mid = mid;
	e->pid = start.pid;
	e->tgid = start.tgid;
	e->cgroup_id = start.cgroup_id;
	e->tree_id = tree_id;
	e->status = status;
	e->rc = rc;
	e->command = command;
	__builtin_memcpy(e->comm, start.comm, sizeof(e->comm));
	submit_event(e);
	return 0;
}

#endif /* AOD_REQUESTS_H */
