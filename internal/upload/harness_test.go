package upload

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/linuxdiag/aod/internal/archive"
	"github.com/linuxdiag/aod/internal/upload/storetest"
)

// store is a real object store behind a fault-injecting proxy.
type store struct {
	kind   string
	server *storetest.Server
	proxy  *storetest.Proxy
	dest   Destination
	// objects lists the names stored; get reads one.
	objects func(t *testing.T) []string
	get     func(t *testing.T, key string) []byte
}

const testContainer = "aod-bundles"

var storeKinds = []string{"azure", "s3"}

func newStore(t *testing.T, kind string) *store {
	t.Helper()
	switch kind {
	case "azure":
		srv := storetest.Azurite(t)
		p := storetest.NewProxy(t, srv)
		cc := storetest.CreateContainer(t, srv, p.URL, testContainer)
		secret := filepath.Join(t.TempDir(), "conn")
		if err := os.WriteFile(secret, []byte(storetest.ConnectionString(p.URL)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := NewAzure(AzureConfig{Container: testContainer, Auth: AzureConnectionString, Secret: Secret{File: secret}})
		if err != nil {
			t.Fatal(err)
		}
		get := func(t *testing.T, key string) []byte {
			r, err := cc.NewBlobClient(key).DownloadStream(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Body.Close()
			b, err := io.ReadAll(r.Body)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		return &store{kind: kind, server: srv, proxy: p, dest: d, get: get, objects: func(t *testing.T) []string {
			var names []string
			pager := cc.NewListBlobsFlatPager(nil)
			for pager.More() {
				page, err := pager.NextPage(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				for _, b := range page.Segment.BlobItems {
					names = append(names, *b.Name)
				}
			}
			slices.Sort(names)
			return names
		}}
	case "s3":
		srv := storetest.VersityGW(t, testContainer)
		p := storetest.NewProxy(t, srv)
		t.Setenv("AWS_ACCESS_KEY_ID", storetest.S3AccessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", storetest.S3SecretKey)
		t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
		t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
		d, err := NewS3(context.Background(), S3Config{Bucket: testContainer, Region: storetest.S3Region, Endpoint: p.URL, PathStyle: true})
		if err != nil {
			t.Fatal(err)
		}
		cl := d.(*s3Dest).cl
		get := func(t *testing.T, key string) []byte {
			r, err := cl.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(testContainer), Key: aws.String(key)})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Body.Close()
			b, err := io.ReadAll(r.Body)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		return &store{kind: kind, server: srv, proxy: p, dest: d, get: get, objects: func(t *testing.T) []string {
			var names []string
			pager := s3.NewListObjectsV2Paginator(cl, &s3.ListObjectsV2Input{Bucket: aws.String(testContainer)})
			for pager.HasMorePages() {
				page, err := pager.NextPage(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range page.Contents {
					names = append(names, *o.Key)
				}
			}
			slices.Sort(names)
			return names
		}}
	}
	t.Fatalf("unknown store %q", kind)
	return nil
}

// writeBundles puts n bundles of size bytes (random, so incompressible and
// distinct) into outDir's batches directory and returns their names.
func writeBundles(t testing.TB, outDir string, n int, size int) []string {
	t.Helper()
	d, err := archive.OpenDir(outDir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	base := time.Date(2026, 12, 6, 13, 4, 5, 0, time.UTC)
	var names []string
	for i := range n {
		name := archive.BundleName(base.Add(time.Duration(i)*time.Second), "smb", "latency")
		data := make([]byte, size)
		_, _ = rand.Read(data)
		if err := os.WriteFile(filepath.Join(d.Path(), name), data, 0o600); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	return names
}

// sink collects the uploader's outcomes.
type sink chan Outcome

func (o sink) record(x Outcome) { o <- x }

// await returns the next n outcomes, failing the test if they do not come within
// a minute (a hang, not a timing assertion).
func (o sink) await(t *testing.T, n int) []Outcome {
	t.Helper()
	var got []Outcome
	deadline := time.After(time.Minute)
	for len(got) < n {
		select {
		case x := <-o:
			got = append(got, x)
		case <-deadline:
			t.Fatalf("got %d of %d outcomes within a minute: %+v", len(got), n, got)
		}
	}
	return got
}

// testOptions are fast retries for tests.
func testOptions(t testing.TB, outDir string, dest Destination, oc sink) Options {
	return Options{OutputDir: outDir, Destinations: []Destination{dest}, Host: "host-1",
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, BreakerCooldown: 20 * time.Millisecond,
		Timeout: 30 * time.Second, OnOutcome: oc.record, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}
}

func start(t *testing.T, o Options) *Uploader {
	t.Helper()
	u, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	u.Start()
	t.Cleanup(func() { _ = u.Shutdown(context.Background()) })
	return u
}

// onlyOnce checks that every bundle and its manifest are in the store exactly once
// and that the server stored each object once (no overwrite).
func onlyOnce(t *testing.T, s *store, bundles []string) {
	t.Helper()
	objs := s.objects(t)
	if len(objs) != 2*len(bundles) {
		t.Fatalf("store holds %d objects, want %d (a bundle and a manifest each): %q", len(objs), 2*len(bundles), objs)
	}
	var nb int
	for _, o := range objs {
		if strings.HasSuffix(o, ".tar.zst") {
			nb++
		}
	}
	if nb != len(bundles) {
		t.Fatalf("store holds %d bundles, want %d: %q", nb, len(bundles), objs)
	}
	for path, n := range s.proxy.Created("/host-1/") {
		if n != 1 {
			t.Errorf("%s stored %d times; want once", path, n)
		}
	}
	if got := len(s.proxy.Created("/host-1/")); got != len(objs) {
		t.Errorf("the server acknowledged %d creations for %d objects", got, len(objs))
	}
}

func count(os []Outcome, outcome string) int {
	n := 0
	for _, o := range os {
		if o.Outcome == outcome {
			n++
		}
	}
	return n
}
