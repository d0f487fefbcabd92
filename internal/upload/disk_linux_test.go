package upload

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/internal/archive"
	"github.com/linuxdiag/aod/internal/retention"
	"github.com/linuxdiag/aod/internal/upload/storetest"
)

// TestFullDisk fills a small tmpfs with bundles while the store refuses them:
// retention keeps them for the upload until free space falls below the floor,
// then deletes the oldest, which are counted lost; the rest are uploaded once the
// store recovers. Nothing is uploaded twice, nothing goes uncounted.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	out := t.TempDir()
	if err := unix.Mount("tmpfs", out, "tmpfs", 0, "size=8m,mode=0700"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(out, unix.MNT_DETACH) })
	s := newStore(t, "s3")
	var refuse atomic.Bool
	refuse.Store(true)
	s.proxy.Fault = func(r *http.Request) storetest.Fault {
		if refuse.Load() && bundlePUT(r) {
			return storetest.Fault{Status: 503}
		}
		return storetest.Fault{}
	}
	bundles := writeBundles(t, out, 6, 1<<20) // 6 MiB of 8
	oc := make(sink, 16)
	o := testOptions(t, out, s.dest, oc)
	o.StateDir = filepath.Join(t.TempDir(), "state") // elsewhere: its few bytes do not move the floor
	u := start(t, o)
	sw, err := retention.New(retention.Options{OutputDir: out, MaxTotalBytes: 4 << 20, MaxAge: 1,
		Hold: u.Holds, Dropped: u.Dropped, MinFreeBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := sw.Sweep()
	if err != nil {
		t.Fatal(err)
	}
	// Age and size would delete them all; the floor (4 MiB free of 8, 2 free now)
	// takes exactly the two oldest.
	var gone []string
	for _, d := range rep.Deleted {
		if d.Reason != retention.ReasonFloor {
			t.Errorf("%s deleted for %s", d.Name, d.Reason)
		}
		gone = append(gone, d.Name)
	}
	if len(gone) != 2 || gone[0] != bundles[0] || gone[1] != bundles[1] {
		t.Fatalf("deleted %v; want the two oldest", gone)
	}
	lost := oc.await(t, 2)
	for _, x := range lost {
		// Told by retention (the floor), or found by a retry racing it (gone).
		if x.Outcome != OutcomeLost || x.Err == nil || !strings.Contains(x.Err.Error(), "floor") && !strings.Contains(x.Err.Error(), "deleted from the disk") {
			t.Errorf("outcome %+v", x)
		}
	}
	refuse.Store(false)
	got := oc.await(t, 4)
	if n := count(got, OutcomeUploaded); n != 4 {
		t.Errorf("outcomes %+v", got)
	}
	onlyOnce(t, s, bundles[2:])
	st := u.Stats().Destinations[0]
	if st.Outcomes[OutcomeLost] != 2 || st.Outcomes[OutcomeUploaded] != 4 || st.Pending != 0 || sw.Stats().DeletedHeld != 2 {
		t.Errorf("stats %+v, retention %+v", st, sw.Stats())
	}
	if _, err := archive.OpenDir(out); err != nil {
		t.Fatal(err)
	}
}
