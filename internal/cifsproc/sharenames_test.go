package cifsproc

import (
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDebugData serves DebugData text the test swaps, counting reads.
type fakeDebugData struct {
	mu    sync.Mutex
	text  []byte
	err   error
	reads int
}

func (f *fakeDebugData) read() ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return f.text, f.err
}

func (f *fakeDebugData) set(text []byte, err error) {
	f.mu.Lock()
	f.text, f.err = text, err
	f.mu.Unlock()
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestShareNamesResolvesAndRefreshesOnUnknownIDs(t *testing.T) {
	src := &fakeDebugData{text: readTestdata(t, "kernel-6.1/DebugData")}
	clk := &fakeClock{t: time.Unix(1000, 0)}
	sn := NewShareNames(src.read, time.Second)
	sn.now = clk.now

	name, ok := sn.Lookup(0xce760632, 0xe9710cc7)
	if !ok || name != (Name{Server: "127.0.0.1", Share: "share"}) || src.reads != 1 {
		t.Fatalf("got %+v %v after %d reads", name, ok, src.reads)
	}
	// Known pairs never re-read.
	for range 10 {
		sn.Lookup(0xce760632, 0xe9710cc7)
	}
	if src.reads != 1 {
		t.Fatalf("%d reads for known pairs", src.reads)
	}

	// The client mounts another server (or reconnects: new session, new trees) inside
	// the interval; the first lookup of each new pair reads at once.
	src.set(readTestdata(t, "proc/cifs-multi/fs/cifs/DebugData"), nil)
	name, ok = sn.Lookup(0x44, 0xfffffffe)
	if !ok || name != (Name{Server: "198.51.100.7", Share: "scratch"}) || src.reads != 2 {
		t.Fatalf("got %+v %v after %d reads", name, ok, src.reads)
	}
	// A pair that read did not list waits for the interval, however many lookups come.
	for range 100 {
		if _, ok := sn.Lookup(0x44, 0x1234); ok {
			t.Fatal("resolved a tree DebugData does not list")
		}
	}
	if src.reads != 3 {
		t.Fatalf("%d reads for one unlisted pair inside the interval, want 3", src.reads)
	}
	clk.t = clk.t.Add(time.Second)
	if _, ok := sn.Lookup(0x44, 0x1234); ok || src.reads != 4 {
		t.Fatalf("after the interval: %v after %d reads, want one more read", ok, src.reads)
	}
	// The first server's tree left DebugData but is still named: histogram entries
	// outlive an unmount.
	if name, ok := sn.Lookup(0xce760632, 0xe9710cc7); !ok || name.Share != "share" {
		t.Fatalf("forgot an unmounted tree: %+v", name)
	}

	// Session-level requests (tree 0) of a known session name the server and never
	// trigger a read.
	clk.t = clk.t.Add(time.Hour)
	name, ok = sn.Lookup(0x44, 0)
	if ok || name != (Name{Server: "198.51.100.7"}) || src.reads != 4 {
		t.Fatalf("tree 0: %+v %v after %d reads", name, ok, src.reads)
	}
	if _, ok := sn.Lookup(0, 0); ok || src.reads != 4 {
		t.Fatalf("session 0 read DebugData")
	}
}

func TestShareNamesErrors(t *testing.T) {
	src := &fakeDebugData{err: fs.ErrNotExist}
	sn := NewShareNames(src.read, 0)
	// No cifs module: nothing to name, nothing failed.
	if err := sn.Refresh(); err != nil {
		t.Fatalf("absent DebugData: %v", err)
	}
	if r, p, _ := sn.Errors(); r != 0 || p != 0 {
		t.Fatalf("absent DebugData counted as failure: %d %d", r, p)
	}

	denied := errors.New("permission denied")
	src.set(nil, denied)
	if err := sn.Refresh(); !errors.Is(err, denied) {
		t.Fatalf("Refresh = %v", err)
	}
	// A partly broken listing still names what it can and counts a parse failure.
	good := string(readTestdata(t, "kernel-6.12/DebugData"))
	src.set([]byte(strings.Replace(good, "tid: 0x5022a236", "tid: bogus", 1)), nil)
	if err := sn.Refresh(); err == nil {
		t.Fatal("no error for a broken tid")
	}
	if name, ok := sn.Lookup(0x936c11ff, 0x53dfe4a); !ok || name.Share != "share" {
		t.Fatalf("lost the intact share: %+v", name)
	}
	r, p, last := sn.Errors()
	if r != 1 || p != 1 || last == nil || !strings.Contains(last.Error(), "bogus") {
		t.Fatalf("errors %d %d %v", r, p, last)
	}
}

func TestShareNamesForgetsStaleTreesPastTheBound(t *testing.T) {
	src := &fakeDebugData{}
	sn := NewShareNames(src.read, 0)
	var b strings.Builder
	b.WriteString("Servers: \n1) ConnectionId: 0x1 Hostname: h \n\t1) Address: h Uses: 1\n\tSecurity type: x SessionId: 0x1\n")
	for i := range maxRemembered + 1 {
		b.WriteString("\t" + strconv.Itoa(i+1) + `) \\h\s` + strconv.Itoa(i) + " Mounts: 1\n\ttid: " + strconv.Itoa(i+1) + "\n")
	}
	src.set([]byte(b.String()), nil)
	if err := sn.Refresh(); err != nil {
		t.Fatal(err)
	}
	src.set(readTestdata(t, "kernel-6.1/DebugData"), nil)
	if err := sn.Refresh(); err != nil {
		t.Fatal(err)
	}
	if _, ok := sn.Lookup(1, 1); ok {
		t.Fatal("stale tree kept past the bound")
	}
	if _, ok := sn.Lookup(0xce760632, 0xe9710cc7); !ok {
		t.Fatal("current tree dropped")
	}
}

func TestListedSessions(t *testing.T) {
	src := &fakeDebugData{text: readTestdata(t, "proc/cifs-multi/fs/cifs/DebugData")}
	sn := NewShareNames(src.read, time.Hour)
	ids, ok := sn.ListedSessions()
	if !ok || len(ids) != 2 || !ids[0x1000000000abcdef] || !ids[0x44] {
		t.Fatalf("listed %v ok %v", ids, ok)
	}
	// It reads afresh whatever the interval, and is inconclusive when the read is not
	// clean: a session missing from a half-parsed listing may still exist.
	src.set([]byte(strings.Replace(string(readTestdata(t, "proc/cifs-multi/fs/cifs/DebugData")), "tid: 0x5", "tid: x", 1)), nil)
	if ids, ok := sn.ListedSessions(); ok {
		t.Fatalf("unclean read listed %v", ids)
	}
	src.set(nil, fs.ErrNotExist)
	if _, ok := sn.ListedSessions(); ok {
		t.Fatal("no DebugData (cifs not loaded) listed sessions")
	}
	if src.reads != 3 {
		t.Fatalf("%d reads, want one per call", src.reads)
	}
}
