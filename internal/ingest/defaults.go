package ingest

import "time"

// Defaults for zero Config fields. They are defined on every platform so that the
// collector receiver's configuration, which builds everywhere, takes them from here.
const (
	DefaultCollectionInterval = 10 * time.Second
	DefaultStaleAge           = 5 * time.Minute
	DefaultNamesInterval      = time.Second
	DefaultPruneInterval      = time.Minute
	DefaultProcDir            = "/proc/fs/cifs"
	DefaultMountStats         = "/proc/self/mountstats"
	DefaultMountInfo          = "/proc/self/mountinfo"
)
