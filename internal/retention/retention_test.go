package retention

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/linuxdiag/aod/internal/archive"
	"github.com/linuxdiag/aod/internal/logging/logtest"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// plant writes a bundle of size bytes made at t and returns its name.
func plant(t *testing.T, out string, at time.Time, typ string, size int) string {
	t.Helper()
	name := archive.BundleName(at, "smb", typ)
	if err := os.WriteFile(filepath.Join(out, archive.BatchesDir, name), bytes.Repeat([]byte{'x'}, size), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

func setup(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	d, err := archive.OpenDir(out)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	return out
}

func names(t *testing.T, out string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(out, archive.BatchesDir))
	if err != nil {
		t.Fatal(err)
	}
	var n []string
	for _, e := range entries {
		n = append(n, e.Name())
	}
	slices.Sort(n)
	return n
}

func sweeper(t *testing.T, o Options) (*Sweeper, *logtest.Logs) {
	t.Helper()
	var logs *logtest.Logs
	o.Logger, logs = logtest.New()
	o.Now = func() time.Time { return now }
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s, logs
}

func TestSweepByAge(t *testing.T) {
	out := setup(t)
	old := plant(t, out, now.Add(-72*time.Hour), "latency", 10)
	edge := plant(t, out, now.Add(-47*time.Hour), "error", 10)
	fresh := plant(t, out, now.Add(-time.Hour), "latency", 10)
	foreign := filepath.Join(out, archive.BatchesDir, "notes.txt")
	os.WriteFile(foreign, []byte("mine"), 0o600)

	s, logs := sweeper(t, Options{OutputDir: out, MaxAge: 48 * time.Hour})
	if st := s.Stats(); st.Measured || st.TotalBytes != 0 {
		t.Fatalf("disk use known before any sweep: %+v", st)
	}
	rep, err := s.Sweep()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{edge, fresh}; !slices.Equal(rep.Kept, want) {
		t.Fatalf("kept %v, want %v", rep.Kept, want)
	}
	if len(rep.Deleted) != 1 || rep.Deleted[0] != (Deletion{Name: old, Bytes: 10, Reason: ReasonAge}) {
		t.Fatalf("deleted %+v", rep.Deleted)
	}
	if got := names(t, out); !slices.Equal(got, []string{edge, fresh, "notes.txt"}) {
		t.Fatalf("directory holds %v", got)
	}
	// The survivors' 20 bytes are the disk use; the foreign file is not aod's.
	if st := s.Stats(); st.Deleted != 1 || st.DeletedBytes != 10 || st.Sweeps != 1 || !st.Measured || st.TotalBytes != 20 || rep.TotalBytes != 20 {
		t.Fatalf("stats %+v", st)
	}
	if logs.Count("deleted bundle", "name", old) != 1 {
		t.Fatalf("deletion not logged:\n%s", logs)
	}
}

func TestSweepBySize(t *testing.T) {
	out := setup(t)
	a := plant(t, out, now.Add(-4*time.Hour), "latency", 300)
	b := plant(t, out, now.Add(-3*time.Hour), "latency", 300)
	c := plant(t, out, now.Add(-2*time.Hour), "error", 300)
	d := plant(t, out, now.Add(-1*time.Hour), "latency", 200)

	// 1100 bytes > 97 % of 1000: delete oldest first until at most 850 remain,
	// which takes exactly one bundle (800 left).
	s, _ := sweeper(t, Options{OutputDir: out, MaxTotalBytes: 1000})
	rep, err := s.Sweep()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{b, c, d}; !slices.Equal(rep.Kept, want) || rep.TotalBytes != 800 {
		t.Fatalf("kept %v (%d bytes), want %v", rep.Kept, rep.TotalBytes, want)
	}
	if len(rep.Deleted) != 1 || rep.Deleted[0].Name != a || rep.Deleted[0].Reason != ReasonSize {
		t.Fatalf("deleted %+v", rep.Deleted)
	}

	// 800 + 170 = 970 is not above 97 %: nothing more goes.
	e := plant(t, out, now, "error", 170)
	if rep, _ := s.Sweep(); len(rep.Deleted) != 0 || len(rep.Kept) != 4 {
		t.Fatalf("at the high watermark: %+v", rep)
	}
	// One byte over: down to at most 850, oldest first: b alone suffices (971-300).
	f := plant(t, out, now.Add(time.Second), "error", 1)
	rep, _ = s.Sweep()
	if want := []string{c, d, e, f}; !slices.Equal(rep.Kept, want) || rep.TotalBytes != 671 || rep.Deleted[0].Name != b {
		t.Fatalf("kept %v (%d bytes), want %v", rep.Kept, rep.TotalBytes, want)
	}
}

func TestSweepFractionalLimit(t *testing.T) {
	// max_total_log_size_mb: 0.5 as in the AODv2 fixture is 524288 bytes.
	out := setup(t)
	old := plant(t, out, now.Add(-2*time.Hour), "latency", 300_000)
	young := plant(t, out, now.Add(-time.Hour), "latency", 300_000)
	s, _ := sweeper(t, Options{OutputDir: out, MaxTotalBytes: int64(0.5 * (1 << 20))})
	rep, err := s.Sweep()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Kept, []string{young}) || rep.Deleted[0].Name != old {
		t.Fatalf("report %+v", rep)
	}
}

func TestSweepLeavesInProgressAndRemovesLeftovers(t *testing.T) {
	out := setup(t)
	d, err := archive.OpenDir(out)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// A bundle being written right now, holding its lock.
	w, err := d.Create(archive.BundleName(now, "smb", "latency"), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if err := w.Add("big", 5000, bytes.NewReader(make([]byte, 5000))); err != nil {
		t.Fatal(err)
	}
	live := filepath.Base(w.TempPath())
	// A temporary left by a killed writer: nobody holds its lock.
	dead := "." + archive.BundleName(now.Add(-time.Hour), "smb", "error") + ".tmp"
	os.WriteFile(filepath.Join(out, archive.BatchesDir, dead), []byte("half a bundle"), 0o600)
	spool := ".aod_spool_zz.tmp"
	os.WriteFile(filepath.Join(out, archive.BatchesDir, spool), []byte("spooled"), 0o600)

	// The clock is far ahead, so only the lock protects the live one.
	s, logs := sweeper(t, Options{OutputDir: out, MaxTotalBytes: 1, TempGrace: time.Minute})
	s.o.Now = func() time.Time { return time.Now().Add(24 * time.Hour) }
	rep, err := s.Sweep()
	if err != nil {
		t.Fatal(err)
	}
	if got := names(t, out); !slices.Equal(got, []string{live}) {
		t.Fatalf("directory holds %v, want only the live temporary %s", got, live)
	}
	if len(rep.Deleted) != 2 || s.Stats().TempsRemoved != 2 || s.Stats().Deleted != 0 {
		t.Fatalf("report %+v, stats %+v", rep, s.Stats())
	}
	if logs.Count("removed a temporary left by an interrupted bundle") != 2 {
		t.Fatalf("removals not logged:\n%s", logs)
	}
}

func TestSweepDoesNotFollowSymlinks(t *testing.T) {
	out := setup(t)
	elsewhere := t.TempDir()
	target := filepath.Join(elsewhere, "precious")
	os.WriteFile(target, bytes.Repeat([]byte{'p'}, 5000), 0o600)
	batches := filepath.Join(out, archive.BatchesDir)
	oldLink := archive.BundleName(now.Add(-100*24*time.Hour), "smb", "latency")
	os.Symlink(target, filepath.Join(batches, oldLink))
	tempLink := "." + archive.BundleName(now.Add(-100*24*time.Hour), "smb", "error") + ".tmp"
	os.Symlink(target, filepath.Join(batches, tempLink))
	os.Symlink(elsewhere, filepath.Join(batches, archive.BundleName(now.Add(-99*24*time.Hour), "smb", "error")))
	real := plant(t, out, now.Add(-time.Hour), "latency", 100)

	s, _ := sweeper(t, Options{OutputDir: out, MaxAge: 24 * time.Hour, MaxTotalBytes: 1000, TempGrace: time.Nanosecond})
	rep, err := s.Sweep()
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Deleted) != 0 || len(rep.Ignored) != 3 || !slices.Equal(rep.Kept, []string{real}) || rep.TotalBytes != 100 {
		t.Fatalf("report %+v", rep)
	}
	if b, err := os.ReadFile(target); err != nil || len(b) != 5000 {
		t.Fatalf("symlink target touched: %d bytes, %v", len(b), err)
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 1 {
		t.Fatalf("directory behind a symlink touched: %v", entries)
	}

	// The batches directory itself replaced by a symlink: refused.
	os.RemoveAll(batches)
	os.Symlink(elsewhere, batches)
	if _, err := s.Sweep(); err == nil {
		t.Fatal("swept through a symlinked batches directory")
	}
	if b, _ := os.ReadFile(target); len(b) != 5000 {
		t.Fatal("symlink target touched")
	}
}

func TestRunSweepsOnTrigger(t *testing.T) {
	out := setup(t)
	s, _ := sweeper(t, Options{OutputDir: out, MaxAge: time.Hour, Interval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	old := plant(t, out, now.Add(-2*time.Hour), "latency", 10)
	deadline := time.Now().Add(10 * time.Second)
	for slices.Contains(names(t, out), old) && time.Now().Before(deadline) {
		s.Trigger()
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if slices.Contains(names(t, out), old) {
		t.Fatal("a triggered sweep did not delete the old bundle")
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("accepted no output directory")
	}
	if _, err := New(Options{OutputDir: "/x", MaxTotalBytes: -1}); err == nil {
		t.Error("accepted a negative limit")
	}
}

// TestCountersCarryOver: a Sweeper made with an earlier one's Counters (a reload)
// starts from its counts and adds its own.
func TestCountersCarryOver(t *testing.T) {
	out := setup(t)
	plant(t, out, now.Add(-72*time.Hour), "latency", 10)
	first, _ := sweeper(t, Options{OutputDir: out, MaxAge: 48 * time.Hour})
	if _, err := first.Sweep(); err != nil {
		t.Fatal(err)
	}
	second, _ := sweeper(t, Options{OutputDir: out, MaxAge: 48 * time.Hour, Counters: first.Counters()})
	if st := second.Stats(); st.Deleted != 1 || st.DeletedBytes != 10 || st.Sweeps != 1 || !st.Measured {
		t.Fatalf("before its first sweep: %+v, want the first sweeper's counts", st)
	}
	plant(t, out, now.Add(-96*time.Hour), "error", 5)
	if _, err := second.Sweep(); err != nil {
		t.Fatal(err)
	}
	if st := second.Stats(); st.Deleted != 2 || st.DeletedBytes != 15 || st.Sweeps != 2 {
		t.Fatalf("after its sweep: %+v", st)
	}
}

// TestSweepHoldsBundlesPendingUpload: a bundle waiting for its upload survives the
// age and size rules; only the free-space floor deletes it, after every bundle
// not held, and it is reported and counted.
func TestSweepHoldsBundlesPendingUpload(t *testing.T) {
	out := setup(t)
	a := plant(t, out, now.Add(-30*24*time.Hour), "latency", 300) // held, too old
	b := plant(t, out, now.Add(-3*time.Hour), "latency", 600)     // held, over the size limit
	c := plant(t, out, now.Add(-2*time.Hour), "error", 300)
	hold := map[string]bool{a: true, b: true}
	var dropped []string
	o := Options{OutputDir: out, MaxAge: 7 * 24 * time.Hour, MaxTotalBytes: 1000,
		Hold: func(n string) bool { return hold[n] }, Dropped: func(n, why string) { dropped = append(dropped, n) },
		MinFreeBytes: 1}
	s, _ := sweeper(t, o)
	rep, err := s.Sweep()
	if err != nil {
		t.Fatal(err)
	}
	// Only c could go for size (1200 > 970), and it does.
	if want := []string{a, b}; !slices.Equal(rep.Kept, want) || len(rep.Deleted) != 1 || rep.Deleted[0].Name != c {
		t.Fatalf("kept %v, deleted %+v", rep.Kept, rep.Deleted)
	}
	if len(dropped) != 0 || s.Stats().DeletedHeld != 0 {
		t.Fatalf("dropped %v above the floor", dropped)
	}
	// A floor no disk can meet: the unheld d goes first, then the held, oldest first.
	d := plant(t, out, now.Add(-time.Hour), "error", 10)
	o.MinFreeBytes = 1 << 62
	o.Counters = s.Counters()
	s, _ = sweeper(t, o)
	rep, err = s.Sweep()
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, del := range rep.Deleted {
		if del.Reason != ReasonFloor {
			t.Errorf("%s deleted for %s", del.Name, del.Reason)
		}
		order = append(order, del.Name)
	}
	if want := []string{d, a, b}; !slices.Equal(order, want) {
		t.Errorf("deleted %v, want %v", order, want)
	}
	if want := []string{a, b}; !slices.Equal(dropped, want) || s.Stats().DeletedHeld != 2 {
		t.Errorf("dropped %v, held deletions %d", dropped, s.Stats().DeletedHeld)
	}
}
