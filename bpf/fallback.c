// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore
/*
 * Fallback for kernels whose cifs module lacks the smb3_cmd_enter/done tracepoints:
 * fexit programs on the two functions that fire them, reading the same values from
 * the same SMB2 headers, and recording them through the same code (aod_requests.h)
 * into the main object's maps (the loader passes them in). The headers are wire
 * format, read with bpf_probe_read_kernel: no kernel structure layout is assumed.
 *
 * - smb2_mid_entry_alloc(const struct smb2_hdr *shdr, struct TCP_Server_Info *server)
 *   allocates a request's mid in the calling task and fires smb3_cmd_enter from shdr;
 * - map_smb2_to_linux_error(char *buf, bool log_err) maps a response's status to the
 *   returned -errno and fires smb3_cmd_done (status 0) or smb3_cmd_err from buf.
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include "aod.h"
#include "aod_hist.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#include "aod_requests.h"

/* The SMB2 header's leading fields (MS-SMB2 2.2.1, little-endian on the wire). */
struct smb2_hdr {
	__u32 protocol_id;
	__u16 structure_size;
	__u16 credit_charge;
	__u32 status;
	__u16 command;
	__u16 credit_request;
	__u32 flags;
	__u32 next_command;
	__u64 message_id;
	__u32 process_id; /* Id.SyncId; the AsyncId's low half in async responses */
	__u32 tree_id;    /* Id.SyncId; the AsyncId's high half in async responses */
	__u64 session_id;
};

/* Referenced only so that bpf2go writes the type out for Go (its layout is tested). */
const struct smb2_hdr *unused_smb2_hdr __attribute__((unused));

SEC("fexit/smb2_mid_entry_alloc")
int aod_mid_alloc(__u64 *ctx)
{
	/* args: shdr, server; then the returned struct mid_q_entry * */
	struct smb2_hdr h;

	if (!ctx[2] || bpf_probe_read_kernel(&h, sizeof(h), (const void *)ctx[0]))
		return 0;
	return record_start(h.tree_id, h.session_id, h.command, h.message_id);
}

SEC("fexit/map_smb2_to_linux_error")
int aod_status_map(__u64 *ctx)
{
	/* args: buf (the response, starting with its SMB2 header), log_err; then rc */
	struct smb2_hdr h;

	if (bpf_probe_read_kernel(&h, sizeof(h), (const void *)ctx[0]))
		return 0;
	return record_completion(h.tree_id, h.session_id, h.command, h.message_id, h.status,
				 h.status ? (__s32)ctx[2] : 0, h.status != 0);
}
