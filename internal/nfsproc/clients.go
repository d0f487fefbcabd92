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

// V4Order returns the NFSv4 procedure codes of the first NFSv4 mount that lists its
// operations: the running kernel's order, which the NFS probes need (kernels after 6.12
// inserted procedures); nil when no such mount exists.
func V4Order(mounts []Mount) []uint16 {
	for i := range mounts {
		if m := &mounts[i]; m.Version == 4 && len(m.Ops) > 0 {
			return m.OpCodes()
		}
	}
	return nil
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
// the probes count them (one rpc_stats_latency per completed RPC): from any moment
// on, a client's per-procedure growth equals its mount's. Update binds a client when
// exactly one mount name grew by the same non-zero counts since the client was first
// seen (or last rebased), and drops the binding when no mount of that name remains
// (client ids are reused). Growth is measured from a fixed base, so that RPCs
// completing between the reads of the probes and of mountstats at the present Update
// only delay the binding, and also over the last interval alone, so that such RPCs at
// the base's Update do not prevent it. Clients that serve no mount (the NFSv4 lease
// client, NFSACL) stay unbound, rebased every MaxPending Updates. Methods are safe
// for concurrent use.
type Clients struct {
	mu      sync.Mutex
	tick    uint64
	pending map[uint64]*pending // unbound clients
	seen    map[uint64]Counts   // every client's counts at the previous Update
	// mounts holds, for each tick some pending client is based on, the mounts'
	// counts by mount point at the end of that tick.
	mounts map[uint64]map[string]Counts
	bound  map[uint64]MountName
}

// MaxPending is how many Updates a client's growth is compared from one base before
// the base moves to the present (mountstats snapshots are kept that long).
const MaxPending = 16

// pending is an unbound client's base: its counts at the end of tick.
type pending struct {
	tick   uint64
	counts Counts
}

// NewClients returns a Clients that knows no client yet.
func NewClients() *Clients {
	return &Clients{pending: map[uint64]*pending{}, seen: map[uint64]Counts{},
		mounts: map[uint64]map[string]Counts{0: {}}, bound: map[uint64]MountName{}}
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
	prev := c.tick
	c.tick++
	now := map[string]Counts{}
	names := map[string]MountName{}
	present := map[MountName]bool{}
	for i := range mounts {
		m := &mounts[i]
		counts := Counts{}
		for j, code := range m.OpCodes() {
			if n := m.Ops[j].Ops; n > 0 {
				counts[code] += n
			}
		}
		now[m.MountPoint] = counts
		names[m.MountPoint] = MountName{Server: m.Server, Export: m.Export}
		present[names[m.MountPoint]] = true
	}
	c.mounts[c.tick] = now
	maps.DeleteFunc(c.bound, func(_ uint64, n MountName) bool { return !present[n] })

	for id, counts := range clients {
		if _, ok := c.bound[id]; ok {
			delete(c.pending, id)
			continue
		}
		p := c.pending[id]
		if p == nil {
			// New, or unbound since its mount went: based on the previous Update.
			p = &pending{tick: prev, counts: c.seen[id]}
			c.pending[id] = p
		}
		name, ok := c.match(growth(counts, p.counts), c.mounts[p.tick], now, names)
		if !ok && p.tick != prev {
			// RPCs completing between the two reads at the base's Update skew every
			// comparison with the base; the last interval alone may be clean.
			name, ok = c.match(growth(counts, c.seen[id]), c.mounts[prev], now, names)
		}
		if ok {
			c.bound[id] = name
			delete(c.pending, id)
		} else if c.tick-p.tick >= MaxPending {
			*p = pending{tick: c.tick, counts: maps.Clone(counts)}
		}
	}
	c.seen = make(map[uint64]Counts, len(clients))
	for id, counts := range clients {
		c.seen[id] = maps.Clone(counts)
	}
	maps.DeleteFunc(c.pending, func(id uint64, _ *pending) bool { _, ok := clients[id]; return !ok })
	used := map[uint64]bool{c.tick: true}
	for _, p := range c.pending {
		used[p.tick] = true
	}
	maps.DeleteFunc(c.mounts, func(t uint64, _ map[string]Counts) bool { return !used[t] })
}

// match returns the one mount name whose counts grew from base to now by d, which
// must not be empty; a mount not in base grew from zero.
func (c *Clients) match(d Counts, base, now map[string]Counts, names map[string]MountName) (MountName, bool) {
	if len(d) == 0 {
		return MountName{}, false
	}
	var found *MountName
	for mp, counts := range now {
		if !maps.Equal(growth(counts, base[mp]), d) {
			continue
		}
		if n := names[mp]; found != nil && *found != n {
			return MountName{}, false // two mounts grew alike: wait for more RPCs
		}
		n := names[mp]
		found = &n
	}
	if found == nil {
		return MountName{}, false
	}
	return *found, true
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
