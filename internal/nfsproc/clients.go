package nfsproc

import (
	"maps"
	"sync"

	"github.com/linuxdiag/aod/internal/nfs"
)

// OpCodes returns the NFS procedure code of each of m's Ops, as the probes code the
// RPCs: NFSv3 procedure p is nfs.V3Base+p (mountstats lists them by number), an
// NFSv4 op is named by its place in the kernel's order (nfs.Canonical). Ops of
// another version are nfs.Other.
func (m *Mount) OpCodes() []uint16 {
	codes := make([]uint16, len(m.Ops))
	switch m.Version {
	case 3:
		for i := range codes {
			codes[i] = nfs.V3Base + uint16(i)
		}
	case 4:
		names := make([]string, len(m.Ops))
		for i := range m.Ops {
			names[i] = m.Ops[i].Name
		}
		codes = nfs.Canonical(names)
	default:
		for i := range codes {
			codes[i] = nfs.Other
		}
	}
	return codes
}

// MountName is what a request metric names an NFS mount by.
type MountName struct {
	Server, Export string
}

// Counts are RPCs completed per procedure code.
type Counts map[uint16]uint64

// Clients learns which mount each RPC client (the probes' client id, rpc_clnt
// cl_clid) works for. The kernel keeps one RPC client per NFS superblock, and
// /proc/self/mountstats counts that client's completed RPCs per operation exactly as
// the probes count them (one rpc_stats_latency per completed RPC): between two reads,
// a client's per-procedure growth equals its mount's. Update binds a client when
// exactly one mount name grew by the same non-zero counts, and drops the binding when
// no mount of that name remains (client ids are reused). Clients that serve no mount
// (the NFSv4 lease client, NFSACL) stay unbound. Methods are safe for concurrent use.
type Clients struct {
	mu      sync.Mutex
	clients map[uint64]Counts // cumulative counts at the previous Update
	mounts  map[string]Counts // by mount point
	bound   map[uint64]MountName
}

// NewClients returns a Clients that knows no client yet.
func NewClients() *Clients {
	return &Clients{clients: map[uint64]Counts{}, mounts: map[string]Counts{}, bound: map[uint64]MountName{}}
}

// Lookup returns the mount client works for, if Update has learnt it.
func (c *Clients) Lookup(client uint64) (MountName, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.bound[client]
	return n, ok
}

// Update takes each client's cumulative counts (as the probes' histograms hold them)
// and the mounts as just read. A client or mount not seen before counts from zero,
// so a mount made after the probes were loaded binds from its first RPCs.
func (c *Clients) Update(clients map[uint64]Counts, mounts []Mount) {
	c.mu.Lock()
	defer c.mu.Unlock()
	type grown struct {
		name  MountName
		delta Counts
	}
	var grew []grown
	names := map[MountName]bool{}
	seen := map[string]bool{}
	for i := range mounts {
		m := &mounts[i]
		name := MountName{Server: m.Server, Export: m.Export}
		names[name] = true
		seen[m.MountPoint] = true
		now := Counts{}
		for j, code := range m.OpCodes() {
			if n := m.Ops[j].Ops; n > 0 {
				now[code] += n
			}
		}
		if d := growth(now, c.mounts[m.MountPoint]); len(d) > 0 {
			grew = append(grew, grown{name, d})
		}
		c.mounts[m.MountPoint] = now
	}
	maps.DeleteFunc(c.mounts, func(mp string, _ Counts) bool { return !seen[mp] })
	maps.DeleteFunc(c.bound, func(_ uint64, n MountName) bool { return !names[n] })

	for id, now := range clients {
		d := growth(now, c.clients[id])
		c.clients[id] = maps.Clone(now)
		if _, ok := c.bound[id]; ok || len(d) == 0 {
			continue
		}
		var match *MountName
		ambiguous := false
		for i := range grew {
			if !maps.Equal(grew[i].delta, d) {
				continue
			}
			if match != nil && *match != grew[i].name {
				ambiguous = true
			}
			match = &grew[i].name
		}
		if match != nil && !ambiguous {
			c.bound[id] = *match
		}
	}
	maps.DeleteFunc(c.clients, func(id uint64, _ Counts) bool { _, ok := clients[id]; return !ok })
}

// growth returns the non-zero per-code growth from prev to now; a counter that went
// back (a re-created map entry) counts from zero.
func growth(now, prev Counts) Counts {
	d := Counts{}
	for code, n := range now {
		p := prev[code]
		if n < p {
			p = 0
		}
		if n > p {
			d[code] = n - p
		}
	}
	return d
}
