// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore
/*
 * aod's io probe: failed file operations (AODv2's io protocol), on the raw syscall
 * exit. Every system call on the host passes here, so a success costs one compare:
 * a return value outside -4095..-1 leaves at once. A failure is looked up by syscall
 * number in "io_syscalls" (the loader's table of the calls that are io operations);
 * then the file it used is found from its arguments, still in the pt_regs the
 * tracepoint passes (x86-64: di, si, dx, r10, r8, r9 hold the arguments until the
 * return to user space):
 *   - a descriptor: current->files->fdt->fd[fd], its mount and super block;
 *   - a path: relative, the mount of its directory descriptor or of the working
 *     directory (the mount the lookup started on); absolute, the longest mount point in
 *     "io_mounts" (an LPM trie the loader fills from /proc/self/mountinfo) that
 *     prefixes it, read from the caller's memory, never by touching the file system.
 * Out-of-scope mounts leave: the scope is every mount, or the mounts of "io_mount_ids"
 * and "io_mounts" (listed by the loader) and any mount of a file system whose magic is
 * in "io_magics" (so a mount made since the last listing is seen through descriptors).
 * A failure in scope is counted per (mount, op, errno) in "io_errors"; one the rules
 * track ("io_tracked", [op][errno]) becomes a ring record, see include/aod.h.
 *
 * Not seen: io_uring and libaio submissions (they do not return through the syscall
 * exit), failures inside mmap'ed memory access (SIGBUS), and asynchronous write-back
 * errors until fsync/close report them (those calls are not io operations in AODv2).
 * Paths resolved across a mount point from a relative start, or by a process in
 * another mount namespace or chroot, are attributed to where the lookup started.
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "aod.h"
#include "aod_hist.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#include "aod_ring.h"

#define AT_FDCWD -100
#define IO_LOCK_CMD(c) ((c) == 5 || (c) == 6 || (c) == 7 || (c) == 36 || (c) == 37 || (c) == 38)

/* arch/x86/include/asm/ptrace.h, include/linux/{sched,fdtable,fs,fs_struct,path,mount}.h
 * and fs/mount.h: the fields aod reads, relocated against the kernel's BTF. */
struct pt_regs {
	unsigned long r10;
	unsigned long r9;
	unsigned long r8;
	unsigned long dx;
	unsigned long si;
	unsigned long di;
	unsigned long orig_ax;
} __attribute__((preserve_access_index));

struct super_block {
	unsigned long s_magic;
} __attribute__((preserve_access_index));

struct vfsmount {
	struct super_block *mnt_sb;
} __attribute__((preserve_access_index));

struct mount {
	struct vfsmount mnt;
	int mnt_id;
} __attribute__((preserve_access_index));

struct path {
	struct vfsmount *mnt;
} __attribute__((preserve_access_index));

struct file {
	struct path f_path;
} __attribute__((preserve_access_index));

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));

struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));

struct fs_struct {
	struct path pwd;
} __attribute__((preserve_access_index));

struct task_struct {
	struct files_struct *files;
	struct fs_struct *fs;
} __attribute__((preserve_access_index));

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AOD_IO_MAX_SYSCALLS);
	__type(key, __u32);
	__type(value, struct io_syscall);
} io_syscalls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u8);
} io_magics SEC(".maps");

/* The ids of the mounts in scope (those of "io_mounts"), for failures found through a
 * descriptor or a relative path. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} io_mount_ids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct io_path_key);
	__type(value, struct io_mount);
} io_mounts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct io_key);
	__type(value, __u64);
} io_errors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AOD_IO_NUM_OPS * AOD_IO_MAX_ERRNO);
	__type(key, __u32);
	__type(value, __u8);
} io_tracked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct io_config);
} io_cfg SEC(".maps");

/* Per-CPU scratch for the path of an absolute lookup (too big for the stack beside
 * the rest). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct io_path_key);
} io_scratch SEC(".maps");

/* Referenced only so that the types reach BTF and bpf2go writes them out for Go. */
const struct io_syscall *unused_io_syscall __attribute__((unused));
const struct io_key *unused_io_key __attribute__((unused));
const struct io_mount *unused_io_mount __attribute__((unused));
const struct io_path_key *unused_io_path_key __attribute__((unused));
const struct io_config *unused_io_config __attribute__((unused));

static __always_inline unsigned long arg_of(const struct pt_regs *regs, __u8 n)
{
	switch (n) {
	case 0: return BPF_CORE_READ(regs, di);
	case 1: return BPF_CORE_READ(regs, si);
	case 2: return BPF_CORE_READ(regs, dx);
	case 3: return BPF_CORE_READ(regs, r10);
	case 4: return BPF_CORE_READ(regs, r8);
	case 5: return BPF_CORE_READ(regs, r9);
	}
	return 0;
}

/* mount_of fills m from a vfsmount (its struct mount's id and its super block's magic). */
static __always_inline void mount_of(const struct vfsmount *mnt, struct io_mount *m)
{
	const struct mount *real;

	if (!mnt)
		return;
	real = (const void *)mnt - bpf_core_field_offset(struct mount, mnt);
	m->mnt_id = BPF_CORE_READ(real, mnt_id);
	m->magic = BPF_CORE_READ(mnt, mnt_sb, s_magic);
}

/* fd_mount fills m from the mount of one of the current task's descriptors. */
static __always_inline void fd_mount(int fd, struct io_mount *m)
{
	const struct task_struct *task = (const void *)bpf_get_current_task();
	const struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *f = 0;

	if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), fds + fd) || !f)
		return;
	mount_of(BPF_CORE_READ(f, f_path.mnt), m);
}

/* path_mount attributes a path argument; it returns the path's scratch copy for an
 * absolute path, or 0. The caller checks scope: for an absolute path, a mount found
 * in io_mounts is in scope by construction, and inscope says so. */
static __always_inline void path_mount(const char *upath, int dirfd, struct io_mount *m, int *inscope)
{
	__u32 zero = 0;
	struct io_path_key *k;
	struct io_mount *found;
	long n;

	k = bpf_map_lookup_elem(&io_scratch, &zero);
	if (!k)
		return;
	n = bpf_probe_read_user_str(k->path, sizeof(k->path), upath);
	if (n <= 0)
		return;
	if (k->path[0] == '/') {
		k->prefixlen = (n - 1) * 8;
		found = bpf_map_lookup_elem(&io_mounts, k);
		/* The mount point itself ("/mnt/share", a stat of the share's root): the
		 * keys end in '/', so try the path with one. */
		if (!found && n < AOD_IO_PATH_MAX) {
			k->path[(n - 1) & (AOD_IO_PATH_MAX - 1)] = '/';
			k->prefixlen += 8;
			found = bpf_map_lookup_elem(&io_mounts, k);
		}
		if (found) {
			*m = *found;
			*inscope = 1;
		}
		return;
	}
	if (dirfd != AT_FDCWD) {
		fd_mount(dirfd, m);
		return;
	}
	const struct task_struct *task = (const void *)bpf_get_current_task();
	mount_of(BPF_CORE_READ(task, fs, pwd.mnt), m);
}

static __always_inline int io_failure(const struct pt_regs *regs, __u32 err)
{
	__u32 nr = BPF_CORE_READ(regs, orig_ax), zero = 0, idx;
	const struct io_syscall *sys;
	const struct io_config *cfg;
	struct io_mount m = {};
	struct io_key key = {};
	int inscope = 0;
	const __u8 *tracked;
	__u8 op;
	struct event *e;
	__u64 pid_tgid;

	if (nr >= AOD_IO_MAX_SYSCALLS)
		return 0;
	sys = bpf_map_lookup_elem(&io_syscalls, &nr);
	if (!sys || !sys->op_plus1)
		return 0;
	op = sys->op_plus1 - 1;
	if (sys->flag_arg != AOD_IO_NO_ARG) {
		unsigned long v = arg_of(regs, sys->flag_arg);

		if (sys->flags & AOD_IO_F_LOCK_CMD) {
			if (!IO_LOCK_CMD(v))
				return 0;
		} else if ((v & sys->flag_mask) && sys->alt_op_plus1) {
			op = sys->alt_op_plus1 - 1;
		}
	}
	cfg = bpf_map_lookup_elem(&io_cfg, &zero);
	if (!cfg)
		return 0;
	if (sys->arg == AOD_IO_ARG_FD)
		fd_mount((int)arg_of(regs, sys->fd_arg), &m);
	else if (sys->arg == AOD_IO_ARG_PATH)
		path_mount((const char *)arg_of(regs, sys->path_arg),
			   sys->fd_arg == AOD_IO_NO_ARG ? AT_FDCWD : (int)arg_of(regs, sys->fd_arg), &m, &inscope);
	if (!inscope && !cfg->scope_all && !bpf_map_lookup_elem(&io_mount_ids, &m.mnt_id) &&
	    !bpf_map_lookup_elem(&io_magics, &m.magic))
		return 0;

	key.mnt_id = m.mnt_id;
	key.magic = m.magic;
	key.err = err;
	key.op = op;
	count_in(&io_errors, &key);

	idx = (__u32)op * AOD_IO_MAX_ERRNO + err;
	tracked = err < AOD_IO_MAX_ERRNO ? bpf_map_lookup_elem(&io_tracked, &idx) : 0;
	if (!cfg->track_all && !(tracked && *tracked)) {
		count(AOD_CTR_FILTERED);
		return 0;
	}
	e = reserve_record(AOD_KIND_ERROR, AOD_PROTO_IO, bpf_ktime_get_ns());
	if (!e)
		return 0;
	pid_tgid = bpf_get_current_pid_tgid();
	e->start_ns = e->end_ns;
	e->session_id = m.mnt_id;
	e->mid = nr;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->pid = (__u32)pid_tgid;
	e->tgid = pid_tgid >> 32;
	e->tree_id = m.magic;
	e->status = err;
	e->rc = -(__s32)err;
	e->command = op;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	if (sys->arg == AOD_IO_ARG_PATH)
		bpf_probe_read_user_str(e->server, sizeof(e->server), (const char *)arg_of(regs, sys->path_arg));
	submit_event(e);
	return 0;
}

SEC("raw_tp/sys_exit")
int aod_io_exit(struct bpf_raw_tracepoint_args *ctx)
{
	/* TP_PROTO(struct pt_regs *regs, long ret) */
	long ret = (long)ctx->args[1];

	/* Success, or a value (an mmap address) above the errno range: nothing to do. */
	if ((unsigned long)ret < (unsigned long)-4095)
		return 0;
	return io_failure((const void *)ctx->args[0], (__u32)-ret);
}
