package upload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linuxdiag/aod/internal/archive"
	"github.com/linuxdiag/aod/internal/upload/storetest"
)

func TestObjectKey(t *testing.T) {
	var sum [32]byte
	for i := range sum {
		sum[i] = byte(i)
	}
	name := archive.BundleName(time.Date(2026, 12, 6, 13, 4, 5, 123, time.UTC), "smb", "latency")
	key, man, ok := ObjectKey("/aod/v1/", "Web 01.example", name, sum)
	if !ok {
		t.Fatal("not a bundle name")
	}
	if want := "aod/v1/web-01.example/2026-12-06/130405Z-smb-latency-0001020304050607.tar.zst"; key != want {
		t.Errorf("key %q, want %q", key, want)
	}
	if want := "aod/v1/web-01.example/2026-12-06/130405Z-smb-latency-0001020304050607.manifest.json"; man != want {
		t.Errorf("manifest %q, want %q", man, want)
	}
	if _, _, ok := ObjectKey("p", "h", "notes.txt", sum); ok {
		t.Error("a foreign file got an object name")
	}
}

// TestUploadOnce uploads bundles to each real store, checks the objects and the
// manifests, and restarts the uploader to show nothing goes twice.
func TestUploadOnce(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			s := newStore(t, kind)
			out := t.TempDir()
			bundles := writeBundles(t, out, 3, 300<<10)
			oc := make(sink, 16)
			u := start(t, testOptions(t, out, s.dest, oc))
			got := oc.await(t, 3)
			if n := count(got, OutcomeUploaded); n != 3 {
				t.Fatalf("outcomes %+v; want 3 uploaded", got)
			}
			onlyOnce(t, s, bundles)
			for _, o := range got {
				if !strings.Contains(o.URL, "/host-1/2026-12-06/1304") || !strings.HasSuffix(o.URL, ".tar.zst") {
					t.Errorf("object URL %q", o.URL)
				}
			}
			checkManifest(t, s, out, bundles[0])
			st := u.Stats().Destinations[0]
			if st.Outcomes[OutcomeUploaded] != 3 || st.Bytes != 3*300<<10 || st.Pending != 0 || st.Duration.Count != 3 {
				t.Errorf("stats %+v", st)
			}
			if err := u.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			// A restart finds everything uploaded in the journal: no request at all.
			before := s.proxy.Puts("/")
			u2 := start(t, testOptions(t, out, s.dest, oc))
			for _, it := range u2.Status().Items {
				if it.State != StateUploaded {
					t.Errorf("after restart %s is %s", it.Bundle, it.State)
				}
			}
			if err := u2.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if after := s.proxy.Puts("/"); len(after) != len(before) {
				t.Errorf("restart sent PUTs: %v then %v", before, after)
			}
		})
	}
}

// checkManifest reads back bundle's object and its manifest: the object is the
// file, byte for byte, and the manifest names it with its digest and size.
func checkManifest(t *testing.T, s *store, out, bundle string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(out, "batches", bundle))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	key, mkey, _ := ObjectKey(DefaultPrefix, "host-1", bundle, sum)
	if got := s.get(t, key); !bytes.Equal(got, data) {
		t.Fatalf("object %s differs from the bundle (%d bytes, want %d)", key, len(got), len(data))
	}
	var m Manifest
	if err := json.Unmarshal(s.get(t, mkey), &m); err != nil {
		t.Fatal(err)
	}
	if m.Format != ManifestFormat || m.Object != key || m.Bundle != bundle || m.Host != "host-1" ||
		m.SHA256 != hex.EncodeToString(sum[:]) || m.Bytes != int64(len(data)) ||
		!m.Created.Equal(time.Date(2026, 12, 6, 13, 4, 5, 0, time.UTC)) {
		t.Errorf("manifest %+v", m)
	}
}

// faultCase is one row of the fault table: a fault injected by the proxy and the
// outcomes it must end in.
type faultCase struct {
	name string
	// fault returns the proxy's fault function; hit is called on each request
	// that got the fault.
	fault func(s *store, hit func()) func(*http.Request) storetest.Fault
	want  string // every bundle's outcome
}

// bundlePUT says whether r uploads a bundle (not a manifest).
func bundlePUT(r *http.Request) bool {
	return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, ".tar.zst")
}

// firstPer returns a fault for the first bundle PUT of each path, none after.
func firstPer(f storetest.Fault, hit func()) func(*http.Request) storetest.Fault {
	var seen = map[string]bool{}
	var mu = make(chan struct{}, 1)
	return func(r *http.Request) storetest.Fault {
		if !bundlePUT(r) {
			return storetest.Fault{}
		}
		mu <- struct{}{}
		defer func() { <-mu }()
		if seen[r.URL.Path] {
			return storetest.Fault{}
		}
		seen[r.URL.Path] = true
		hit()
		return f
	}
}

var faultCases = []faultCase{
	{"500", func(_ *store, hit func()) func(*http.Request) storetest.Fault {
		return firstPer(storetest.Fault{Status: 500}, hit)
	}, OutcomeUploaded},
	{"503", func(_ *store, hit func()) func(*http.Request) storetest.Fault {
		return firstPer(storetest.Fault{Status: 503}, hit)
	}, OutcomeUploaded},
	{"403", func(_ *store, hit func()) func(*http.Request) storetest.Fault {
		return firstPer(storetest.Fault{Status: 403}, hit)
	}, OutcomeUploaded},
	{"404", func(_ *store, hit func()) func(*http.Request) storetest.Fault {
		return firstPer(storetest.Fault{Status: 404}, hit)
	}, OutcomeUploaded},
	{"timeout", func(_ *store, hit func()) func(*http.Request) storetest.Fault {
		return firstPer(storetest.Fault{Hang: true}, hit)
	}, OutcomeUploaded},
	{"reply lost", func(_ *store, hit func()) func(*http.Request) storetest.Fault {
		return firstPer(storetest.Fault{DropReply: true}, hit)
	}, OutcomeAlreadyPresent},
	{"server killed mid-upload", func(s *store, hit func()) func(*http.Request) storetest.Fault {
		var once atomic.Bool
		return func(r *http.Request) storetest.Fault {
			if !bundlePUT(r) || once.Swap(true) {
				return storetest.Fault{}
			}
			hit()
			return storetest.Fault{AfterBytes: 64 << 10, OnBytes: s.server.Restart}
		}
	}, OutcomeUploaded},
}

// TestFaults runs the fault table against each store: every bundle ends uploaded
// (or already present), each object stored once.
func TestFaults(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			s := newStore(t, kind)
			for _, fc := range faultCases {
				t.Run(fc.name, func(t *testing.T) {
					out := t.TempDir()
					bundles := writeBundles(t, out, 2, 1<<20)
					var hits atomic.Int32
					s.proxy.Fault = fc.fault(s, func() { hits.Add(1) })
					defer func() { s.proxy.Fault = nil }()
					oc := make(sink, 16)
					o := testOptions(t, out, s.dest, oc)
					o.Host = "host-" + strings.ReplaceAll(fc.name, " ", "-")
					o.Timeout = 2 * time.Second
					u := start(t, o)
					got := oc.await(t, len(bundles))
					if hits.Load() == 0 {
						t.Fatal("the fault was never injected")
					}
					wantAlready := 0
					if fc.want == OutcomeAlreadyPresent {
						wantAlready = len(bundles)
					}
					if n := count(got, OutcomeAlreadyPresent); n != wantAlready {
						t.Errorf("%d already present; want %d: %+v", n, wantAlready, got)
					}
					if n := count(got, OutcomeUploaded) + count(got, OutcomeAlreadyPresent); n != len(bundles) {
						t.Errorf("outcomes %+v", got)
					}
					for path, n := range s.proxy.Created("/" + o.Host + "/") {
						if n != 1 {
							t.Errorf("%s stored %d times", path, n)
						}
					}
					if n := len(s.proxy.Created("/" + o.Host + "/")); n != 2*len(bundles) {
						t.Errorf("%d objects created; want %d", n, 2*len(bundles))
					}
					st := u.Stats().Destinations[0]
					var failures uint64
					for _, v := range st.Failures {
						failures += v
					}
					if failures == 0 && fc.want == OutcomeUploaded {
						t.Errorf("no failed attempt counted: %+v", st.Failures)
					}
					t.Logf("fault %s: outcomes uploaded=%d already=%d, failures %v", fc.name,
						count(got, OutcomeUploaded), count(got, OutcomeAlreadyPresent), st.Failures)
				})
			}
		})
	}
}

// TestUploaderRestartMidUpload stops the uploader in the middle of a PUT, once
// while the body is still being sent and once after the store wrote the object
// but before its reply arrived (as a crash there would): the next start resumes
// from the journal, and the store has each object once.
func TestUploaderRestartMidUpload(t *testing.T) {
	for _, kind := range storeKinds {
		for _, stored := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stored=%v", kind, stored), func(t *testing.T) {
				s := newStore(t, kind)
				out := t.TempDir()
				bundles := writeBundles(t, out, 1, 1<<20)
				held := make(chan struct{})
				var once atomic.Bool
				s.proxy.Fault = func(r *http.Request) storetest.Fault {
					if !bundlePUT(r) || once.Swap(true) {
						return storetest.Fault{}
					}
					if stored {
						return storetest.Fault{HoldReply: true, OnStored: func() { close(held) }}
					}
					return storetest.Fault{AfterBytes: 256 << 10, OnBytes: func() { close(held) }}
				}
				oc := make(sink, 4)
				o := testOptions(t, out, s.dest, oc)
				o.BytesPerSecond = 1 << 20 // the body takes about a second: the stop comes in the middle
				u, err := New(o)
				if err != nil {
					t.Fatal(err)
				}
				u.Start()
				<-held
				if err := u.Shutdown(context.Background()); err != nil {
					t.Fatal(err)
				}
				select {
				case x := <-oc:
					t.Fatalf("outcome %+v before the restart", x)
				default:
				}
				start(t, testOptions(t, out, s.dest, oc))
				got := oc.await(t, 1)
				want := OutcomeUploaded
				if stored {
					want = OutcomeAlreadyPresent
				}
				if got[0].Outcome != want {
					t.Errorf("outcome %+v; want %s", got[0], want)
				}
				onlyOnce(t, s, bundles)
			})
		}
	}
}

// TestLostBundle deletes a bundle the store keeps refusing: it is counted lost,
// once, and the others are uploaded.
func TestLostBundle(t *testing.T) {
	s := newStore(t, "s3")
	out := t.TempDir()
	bundles := writeBundles(t, out, 2, 64<<10)
	var refuse atomic.Bool
	refuse.Store(true)
	first := make(chan struct{}, 1)
	s.proxy.Fault = func(r *http.Request) storetest.Fault {
		if bundlePUT(r) && strings.Contains(r.URL.Path, "130405Z") && refuse.Load() {
			select {
			case first <- struct{}{}:
			default:
			}
			return storetest.Fault{Status: 500}
		}
		return storetest.Fault{}
	}
	oc := make(sink, 4)
	u := start(t, testOptions(t, out, s.dest, oc))
	got := oc.await(t, 1)
	if got[0].Outcome != OutcomeUploaded || got[0].Bundle != bundles[1] {
		t.Fatalf("first outcome %+v", got[0])
	}
	<-first
	if !u.Holds(bundles[0]) {
		t.Fatal("a bundle waiting for its upload is not held")
	}
	if err := os.Remove(filepath.Join(out, "batches", bundles[0])); err != nil {
		t.Fatal(err)
	}
	u.Dropped(bundles[0], "deleted by retention: free space below the floor")
	got = oc.await(t, 1)
	if got[0].Outcome != OutcomeLost || got[0].Bundle != bundles[0] {
		t.Fatalf("outcome %+v; want lost", got[0])
	}
	if u.Holds(bundles[0]) {
		t.Error("a lost bundle is still held")
	}
	refuse.Store(false)
	if st := u.Stats().Destinations[0]; st.Outcomes[OutcomeLost] != 1 || st.Outcomes[OutcomeUploaded] != 1 || st.Pending != 0 {
		t.Errorf("stats %+v", st)
	}
	select {
	case x := <-oc:
		t.Errorf("extra outcome %+v", x)
	default:
	}
}
