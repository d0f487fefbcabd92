// Package nfs holds the name tables of the NFS client as the Linux kernel reports it:
// the procedure codes of aod's NFS probes (NFSv4 client procedures NFSPROC4_CLNT_*,
// NFSv3 procedures NFS3PROC_*, NFSACL v3 procedures), the NFS statuses of failed
// replies (NFS4ERR_*, with the NFSv3 names as aliases), and the names of the nfs.*
// metrics, registered as NFS's proto.Table. The names are those AODv2's configuration
// accepts (NFSPROC4_CLNT_READ, NFS4ERR_BAD_STATEID), so its files work unchanged.
// Code -> name lookups return constant strings and never allocate; name -> code
// lookups serve configuration.
package nfs
