/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The few kernel UAPI types and constants the programs need, so they build with
 * clang and libbpf's <bpf/bpf_helpers.h> alone: no vmlinux.h, no <linux/bpf.h> (which
 * drags in the host's architecture-specific <asm/types.h>). The values are kernel ABI
 * (include/uapi/linux/bpf.h) and never change; a wrong one fails at load time.
 */
#ifndef AOD_KERNEL_H
#define AOD_KERNEL_H

typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef short __s16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;
/* Used by prototypes in <bpf/bpf_helper_defs.h>. */
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u64 __be64;
typedef __u32 __wsum;

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_HASH = 5,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_LPM_TRIE = 11,
	BPF_MAP_TYPE_RINGBUF = 27,
};

/* bpf_map_update_elem flags */
#define BPF_ANY 0
#define BPF_NOEXIST 1

/* map_flags */
#define BPF_F_NO_PREALLOC (1U << 0)

/* bpf_ringbuf_submit flags and bpf_ringbuf_query selectors */
#define BPF_RB_NO_WAKEUP (1ULL << 0)
#define BPF_RB_FORCE_WAKEUP (1ULL << 1)
#define BPF_RB_AVAIL_DATA 0
#define BPF_RB_RING_SIZE 1

#define EEXIST 17

/* Context of raw tracepoint programs: the TP_PROTO arguments, each widened to 64 bits. */
struct bpf_raw_tracepoint_args {
	__u64 args[0];
};

#endif /* AOD_KERNEL_H */
