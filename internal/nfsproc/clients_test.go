package nfsproc

import (
	"testing"

	"github.com/linuxdiag/aod/internal/nfs"
)

// v4Mount is an NFSv4 mount whose per-op list is the first ops of the kernel's order
// with the given counts.
func v4Mount(mp, export string, ops map[string]uint64) Mount {
	m := Mount{Server: "10.0.0.1", Export: export, MountPoint: mp, Version: 4}
	for _, name := range []string{"NULL", "READ", "WRITE", "COMMIT", "OPEN"} {
		m.Ops = append(m.Ops, Op{Name: name, Ops: ops[name]})
	}
	return m
}

func v3Mount(mp string, getattrs uint64) Mount {
	return Mount{Server: "10.0.0.2", Export: "/srv", MountPoint: mp, Version: 3,
		Ops: []Op{{Name: "NULL"}, {Name: "GETATTR", Ops: getattrs}}}
}

func wantBound(t *testing.T, c *Clients, client uint64, want MountName, ok bool) {
	t.Helper()
	got, found := c.Lookup(client)
	if found != ok || got != want {
		t.Errorf("client %d: %+v %v, want %+v %v", client, got, found, want, ok)
	}
}

func TestClientsBindByGrowth(t *testing.T) {
	c := NewClients()
	// Mounted after the probes loaded: the first counts bind. Client 9 is the lease
	// client, whose SEQUENCE no mount lists.
	c.Update(map[uint64]Counts{
		1: {nfs.V3GetAttr: 2},
		2: {nfs.V4Read: 3},
		9: {nfs.V4Sequence: 5},
	}, []Mount{v3Mount("/mnt/v3", 2), v4Mount("/mnt/a", "/a", map[string]uint64{"READ": 3})})
	wantBound(t, c, 1, MountName{"10.0.0.2", "/srv"}, true)
	wantBound(t, c, 2, MountName{"10.0.0.1", "/a"}, true)
	wantBound(t, c, 9, MountName{}, false)

	// Two exports that each did one OPEN: client 3's one OPEN could be either.
	mounts := []Mount{v4Mount("/mnt/a", "/a", map[string]uint64{"READ": 3}), v4Mount("/mnt/b", "/b", nil), v4Mount("/mnt/c", "/c", nil)}
	c.Update(map[uint64]Counts{3: {}}, mounts)
	mounts[1].Ops[4].Ops, mounts[2].Ops[4].Ops = 1, 1
	c.Update(map[uint64]Counts{3: {nfs.V4Open: 1}}, mounts)
	wantBound(t, c, 3, MountName{}, false)
	// Then only /c writes, twice, and so does client 3.
	mounts[2].Ops[2].Ops = 2
	c.Update(map[uint64]Counts{3: {nfs.V4Open: 1, nfs.V4Write: 2}}, mounts)
	wantBound(t, c, 3, MountName{"10.0.0.1", "/c"}, true)

	// /c is unmounted: its client id may come back for another mount.
	c.Update(map[uint64]Counts{3: {nfs.V4Open: 1, nfs.V4Write: 2}}, mounts[:2])
	wantBound(t, c, 3, MountName{}, false)
	wantBound(t, c, 2, MountName{"10.0.0.1", "/a"}, true)
}

func TestOpCodes(t *testing.T) {
	v3, v4 := v3Mount("/m", 0), v4Mount("/m", "/", nil)
	if got := v3.OpCodes(); len(got) != 2 || got[1] != nfs.V3GetAttr {
		t.Errorf("v3 codes %v", got)
	}
	if got := v4.OpCodes(); len(got) != 5 || got[1] != nfs.V4Read || got[4] != nfs.V4Open {
		t.Errorf("v4 codes %v", got)
	}
}

func TestV4Order(t *testing.T) {
	v3, v4 := v3Mount("/m3", 0), v4Mount("/m4", "/", nil)
	if got := V4Order([]Mount{v3, v4}); len(got) != 5 || got[4] != nfs.V4Open {
		t.Errorf("V4Order of an NFSv3 and an NFSv4 mount: %v, want the NFSv4 mount's codes", got)
	}
	if got := V4Order([]Mount{v3}); got != nil {
		t.Errorf("V4Order without an NFSv4 mount: %v, want nil", got)
	}
}

func TestJoinDeviceInvertsSplitDevice(t *testing.T) {
	for _, dev := range []string{"127.0.0.1:/", "srv.example:/export/a", "[fd00::1]:/srv/nfs"} {
		if got := JoinDevice(SplitDevice(dev)); got != dev {
			t.Errorf("JoinDevice(SplitDevice(%q)) = %q", dev, got)
		}
	}
	if got := JoinDevice("", "/x"); got != "" {
		t.Errorf("no server: %q, want nothing", got)
	}
}

// TestClientsBindDespiteSkew: the probes' histograms and mountstats are read one after
// the other, so RPCs completing in between are in one and not the other. The client's
// growth is compared from a fixed base, so the binding only waits for the next read.
func TestClientsBindDespiteSkew(t *testing.T) {
	c := NewClients()
	mounts := []Mount{v4Mount("/mnt/a", "/a", nil), v4Mount("/mnt/b", "/b", nil)}
	c.Update(map[uint64]Counts{}, mounts)
	// Two READs on /a: the histograms saw them, mountstats not yet.
	c.Update(map[uint64]Counts{5: {nfs.V4Read: 2}}, mounts)
	// Then mountstats has them, and one more READ is in mountstats only.
	mounts[0].Ops[1].Ops = 3
	c.Update(map[uint64]Counts{5: {nfs.V4Read: 2}}, mounts)
	wantBound(t, c, 5, MountName{}, false)
	c.Update(map[uint64]Counts{5: {nfs.V4Read: 3}}, mounts)
	wantBound(t, c, 5, MountName{"10.0.0.1", "/a"}, true)
}

// TestClientsBindDespiteASkewedBase: a client's first RPCs completed between the reads
// of the probes and of mountstats, so the mount's counts at the client's base hold them
// and the client's do not; growth from that base never agrees, an interval does.
func TestClientsBindDespiteASkewedBase(t *testing.T) {
	c := NewClients()
	mounts := []Mount{v3Mount("/mnt/v3", 5), v4Mount("/mnt/a", "/a", nil)} // 5 GETATTRs before the probes loaded
	c.Update(map[uint64]Counts{}, mounts)
	mounts[0].Ops[1].Ops = 7 // in mountstats, not yet in the probes' read
	c.Update(map[uint64]Counts{}, mounts)
	mounts[0].Ops[1].Ops = 10
	c.Update(map[uint64]Counts{1: {nfs.V3GetAttr: 5}}, mounts)
	wantBound(t, c, 1, MountName{}, false)
	mounts[0].Ops[1].Ops = 14
	c.Update(map[uint64]Counts{1: {nfs.V3GetAttr: 9}}, mounts)
	wantBound(t, c, 1, MountName{"10.0.0.2", "/srv"}, true)
}

// TestClientsRebase: a client that matches no mount (the lease client) is compared from
// a new base every MaxPending updates, so no mountstats snapshot is kept forever.
func TestClientsRebase(t *testing.T) {
	c := NewClients()
	mounts := []Mount{v4Mount("/mnt/a", "/a", nil)}
	for i := range uint64(3 * MaxPending) {
		c.Update(map[uint64]Counts{9: {nfs.V4Sequence: i + 1}}, mounts)
		if len(c.mounts) > 2 {
			t.Fatalf("update %d: %d mountstats snapshots kept", i, len(c.mounts))
		}
	}
	wantBound(t, c, 9, MountName{}, false)
}
