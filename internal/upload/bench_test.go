package upload

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/internal/upload/storetest"
)

// BenchmarkUpload100MiB stores one 100 MiB bundle per iteration, straight to the
// store (no proxy in this process), and reports the throughput and this
// process's CPU time per bundle (user + system: hashing, signing, sending); the
// store's own CPU is not in it.
func BenchmarkUpload100MiB(b *testing.B) {
	for _, kind := range storeKinds {
		b.Run(kind, func(b *testing.B) {
			var dest Destination
			switch kind {
			case "azure":
				srv := storetest.Azurite(b)
				storetest.CreateContainer(b, srv, srv.URL(), testContainer)
				b.Setenv("AOD_BENCH_CONN", storetest.ConnectionString(srv.URL()))
				d, err := NewAzure(AzureConfig{Container: testContainer, Auth: AzureConnectionString, Secret: Secret{Env: "AOD_BENCH_CONN"}})
				if err != nil {
					b.Fatal(err)
				}
				dest = d
			case "s3":
				srv := storetest.VersityGW(b, testContainer)
				b.Setenv("AWS_ACCESS_KEY_ID", storetest.S3AccessKey)
				b.Setenv("AWS_SECRET_ACCESS_KEY", storetest.S3SecretKey)
				b.Setenv("AWS_CONFIG_FILE", filepath.Join(b.TempDir(), "none"))
				b.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(b.TempDir(), "none"))
				hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return srv.Dial(ctx)
				}}}
				d, err := NewS3(context.Background(), S3Config{Bucket: testContainer, Region: storetest.S3Region,
					Endpoint: "http://store", PathStyle: true, HTTPClient: hc})
				if err != nil {
					b.Fatal(err)
				}
				dest = d
			}
			const size = 100 << 20
			b.SetBytes(size)
			b.ReportAllocs()
			var cpu time.Duration
			for range b.N {
				b.StopTimer()
				out := b.TempDir()
				writeBundles(b, out, 1, size)
				oc := make(sink, 1)
				o := Options{OutputDir: out, Destinations: []Destination{dest}, Host: "bench", OnOutcome: oc.record}
				u, err := New(o)
				if err != nil {
					b.Fatal(err)
				}
				before := cpuTime()
				b.StartTimer()
				u.Start()
				x := <-oc
				b.StopTimer()
				cpu += cpuTime() - before
				if x.Outcome != OutcomeUploaded {
					b.Fatalf("outcome %+v", x)
				}
				if err := u.Shutdown(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}

func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
