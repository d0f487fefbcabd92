package aodanomalyconnector

import (
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/linuxdiag/aod/internal/cifsproc"
	"github.com/linuxdiag/aod/internal/detector"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/otelconv"
	"github.com/linuxdiag/aod/internal/podattr"
	"github.com/linuxdiag/aod/internal/proto"
)

// maxShares bounds the share-name cache; a client has far fewer trees than this.
const maxShares = 4096

type treeKey struct {
	session uint64
	tree    uint32
}

// shareNames remembers which share each (session, tree) pair is, from the names the
// receiver put on request records, to name the top shares of an anomaly.
type shareNames map[treeKey]cifsproc.Name

func (s shareNames) learn(attrs pcommon.Map, e *event.Event) {
	var n cifsproc.Name
	if v, ok := attrs.Get(otelconv.AttrServer); ok {
		n.Server = v.Str()
	}
	if v, ok := attrs.Get(proto.TableOf(e.Protocol).Keys.Share); ok {
		n.Share = v.Str()
	}
	k := treeKey{e.SessionID, e.TreeID}
	if n.Server == "" || s[k] == n {
		return
	}
	if len(s) >= maxShares {
		clear(s) // trees come and go with mounts; start over rather than grow
	}
	s[k] = n
}

func (s shareNames) lookup(session uint64, tree uint32) string {
	return detector.UNC(s[treeKey{session, tree}])
}

// maxWorkloads bounds the workload cache; a node runs far fewer cgroups that do I/O.
const maxWorkloads = 4096

// workloads remembers what the receiver named each cgroup on request records (the
// pod, container or unit), to name them on anomalies: the connector may run where
// the cgroups are not.
type workloads map[uint64]podattr.Workload

func (m workloads) learn(attrs pcommon.Map, cgroupID uint64) {
	if cgroupID == 0 {
		return
	}
	w := podattr.FromAttributes(func(k string) string {
		v, _ := attrs.Get(k)
		return v.Str()
	})
	if w.IsZero() || m[cgroupID] == w {
		return
	}
	if len(m) >= maxWorkloads {
		clear(m)
	}
	m[cgroupID] = w
}

func (m workloads) lookup(cgroupID uint64) (podattr.Workload, bool) {
	w, ok := m[cgroupID]
	return w, ok
}
