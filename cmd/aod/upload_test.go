package main

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linuxdiag/aod/internal/archive"
	"github.com/linuxdiag/aod/internal/control"
	"github.com/linuxdiag/aod/internal/upload"
	"github.com/linuxdiag/aod/internal/upload/storetest"
)

// TestUploadStatusAndValidate drives `aod upload status` against a control socket
// serving a real uploader's queue (one bundle stored in versitygw, one refused with
// 500s), and `aod upload validate` against the same store.
func TestUploadStatusAndValidate(t *testing.T) {
	srv := storetest.VersityGW(t, "bundles")
	p := storetest.NewProxy(t, srv)
	p.Fault = func(r *http.Request) storetest.Fault {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "-smb-error-") {
			return storetest.Fault{Status: 500}
		}
		return storetest.Fault{}
	}
	t.Setenv("AWS_ACCESS_KEY_ID", storetest.S3AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", storetest.S3SecretKey)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	out := t.TempDir()
	d, err := archive.OpenDir(out)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 6, 13, 4, 5, 0, time.UTC)
	good, bad := archive.BundleName(at, "smb", "latency"), archive.BundleName(at.Add(time.Second), "smb", "error")
	for _, n := range []string{good, bad} {
		data := make([]byte, 4096)
		_, _ = rand.Read(data)
		if err := os.WriteFile(filepath.Join(d.Path(), n), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	cfg := writeFile(t, "aod_output_dir: "+out+"\nupload:\n  enabled: true\n  min_backoff_sec: 3600\n  max_backoff_sec: 3600\n  s3:\n    bucket: bundles\n    region: "+
		storetest.S3Region+"\n    endpoint: "+p.URL+"\n    path_style: true\n")
	c, _, err := loadConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	uo, _, err := upload.FromConfig(context.Background(), c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan upload.Outcome, 2)
	uo.OnOutcome = func(o upload.Outcome) { done <- o }
	u, err := upload.New(uo)
	if err != nil {
		t.Fatal(err)
	}
	u.Start()
	defer u.Shutdown(context.Background())
	if o := <-done; o.Bundle != good {
		t.Fatalf("outcome %+v", o)
	}
	sock := filepath.Join(t.TempDir(), "aod.sock")
	ctl, err := control.Listen(sock, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	ctl.SetUploadStatus(u.Status)
	// The refused bundle's first attempt may still be under way: wait for its
	// failure to be recorded (the hour-long backoff then keeps it pending).
	for deadline := time.Now().Add(30 * time.Second); ; {
		st := u.Status()
		if st.Items[1].Reason == upload.ReasonServer {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failure recorded: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, stdout, stderr := call(context.Background(), "upload", "status", "--control-socket", sock)
	t.Logf("aod upload status:\n%s", stdout)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"destination s3: ok", good, "uploaded", p.URL + "/bundles/aod/v1/", bad, "pending", "server operation error S3: PutObject", " in ", "1 pending, 0 in_progress, 1 uploaded"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("status lacks %q", want)
		}
	}
	code, stdout, stderr = call(context.Background(), "upload", "validate", "--config", cfg)
	t.Logf("aod upload validate:\n%s%s", stdout, stderr)
	if code != exitOK || !strings.Contains(stdout, "s3: ok (") {
		t.Errorf("validate: exit %d", code)
	}
	p.Fault = func(*http.Request) storetest.Fault { return storetest.Fault{Status: 403} }
	if code, stdout, _ = call(context.Background(), "upload", "validate", "--config", cfg); code != exitFailure || !strings.Contains(stdout, "s3: FAILED") {
		t.Errorf("validate against a 403: exit %d\n%s", code, stdout)
	}
}
