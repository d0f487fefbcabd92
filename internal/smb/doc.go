// Package smb holds the name tables of the SMB2 protocol as the Linux client reports
// it: the command codes of the cifs tracepoints, the NTSTATUS values of failed
// responses (MS-ERREF, generated from ntstatus.tsv), and the names of the smb.*
// metrics, registered as SMB's proto.Table. Code -> name lookups return constant strings and never
// allocate, so they can run once per event; name -> code lookups serve configuration.
package smb

//go:generate go run ./gen -in ntstatus.tsv -out ntstatus_table.go
