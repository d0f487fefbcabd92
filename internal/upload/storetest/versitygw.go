package storetest

import (
	"os"
	"path/filepath"
	"testing"
)

// VersityGWVersion is the versitygw `make setup` installs.
const VersityGWVersion = "v1.8.0"

// Credentials of the versitygw started by VersityGW (its single account).
const (
	S3AccessKey = "aodtestaccess"
	S3SecretKey = "aodtestsecret-not-a-real-one"
	S3Region    = "us-east-1"
)

// VersityGW starts versitygw on a Unix socket, serving an empty directory with
// one bucket per name in buckets. Reach it through a Proxy.
func VersityGW(t testing.TB, buckets ...string) *Server {
	t.Helper()
	bin := need(t, "versitygw", "VERSITYGW", "go install github.com/versity/versitygw/cmd/versitygw@"+VersityGWVersion)
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for _, b := range append([]string{""}, buckets...) {
		if err := os.MkdirAll(filepath.Join(root, b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A short path: a Unix socket's is limited to 107 bytes.
	sock, err := os.MkdirTemp("", "vgw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sock) })
	s := &Server{t: t, bin: bin, Network: "unix", Addr: filepath.Join(sock, "s3.sock"), Dir: dir}
	s.args = []string{"--access", S3AccessKey, "--secret", S3SecretKey, "--region", S3Region,
		"--port", s.Addr, "posix", root}
	s.start()
	t.Cleanup(s.Kill)
	return s
}
