package ingest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/bpf/bpftest"
	"github.com/linuxdiag/aod/internal/event"
	fileio "github.com/linuxdiag/aod/internal/io"
	"github.com/linuxdiag/aod/internal/otelconv"
	"github.com/linuxdiag/aod/internal/proto"
)

// TestIOFailuresReachTheConsumers: failed system calls on a tmpfs mounted by the test
// (the scope: tmpfs mounts) become io.client.errors points named by the mount, exactly
// as many as were made, and the tracked ones become events and log records naming the
// mount and the path.
func TestIOFailuresReachTheConsumers(t *testing.T) {
	h := bpftest.New(t)
	io, err := h.Probes().LoadIO()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { io.Close() })
	dir := t.TempDir()
	if err := unix.Mount("aodio", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	if err := io.SetErrorFilter(bpf.IOErrorFilter{Pairs: []bpf.IOPair{{Op: int(fileio.Open), Errno: int32(unix.ENOENT)}}}); err != nil {
		t.Fatal(err)
	}

	var c capture
	r, err := New(Settings{
		Config:  Config{CollectionInterval: time.Hour, Exponential: true},
		Kernel:  h.Probes(),
		IO:      io,
		Probes:  ProbeConfig{IO: IOProbeConfig{FileSystems: []string{"tmpfs"}}},
		Version: "test",
	}, c.consumers())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	if err := io.Attach(); err != nil {
		t.Fatal(err)
	}

	missing := filepath.Join(dir, "missing")
	for range 4 {
		if _, err := unix.Open(missing, unix.O_RDONLY, 0); err != unix.ENOENT {
			t.Fatal(err)
		}
	}
	for range 3 {
		if err := unix.Mkdir(dir, 0o700); err != unix.EEXIST {
			t.Fatal(err)
		}
	}
	io.Detach() // what else fails on tmpfs mounts from now on is not the test's

	// The receiver hands a drain's events to the event consumer, then its log records
	// to the logs consumer.
	mountLogs := func() (out []plog.LogRecord) {
		for _, lr := range logRecords(&c.logs) {
			if lr.Attributes().AsRaw()[fileio.KeyMountpoint] == dir {
				out = append(out, lr)
			}
		}
		return out
	}
	waitFor(t, "the four tracked failures and their log records", func() bool {
		return len(c.ioEvents(dir)) >= 4 && len(mountLogs()) >= 4
	})
	evs := c.ioEvents(dir)
	if len(evs) != 4 {
		t.Fatalf("%d io events of the mount, want 4", len(evs))
	}
	for _, ev := range evs {
		if ev.Cmd().String() != "OPEN" || ev.Stat().String() != "ENOENT" || ev.Tgid != uint32(os.Getpid()) {
			t.Errorf("event %+v", ev)
		}
	}
	recs := mountLogs()
	for _, lr := range recs {
		a := lr.Attributes().AsRaw()
		if a[fileio.KeyOperation] != "OPEN" || a[otelconv.AttrErrorType] != "ENOENT" || a[fileio.KeyFSType] != "tmpfs" ||
			a[otelconv.AttrFilePath] != missing || lr.Body().Str() != "OPEN failed: ENOENT on "+dir+" (tmpfs)" {
			t.Errorf("log record %q %v", lr.Body().Str(), a)
		}
	}
	if len(recs) != 4 {
		t.Errorf("%d log records name the mount, want 4", len(recs))
	}

	r.collect(context.Background(), time.Now())
	md := (<-c.metrics)[0]
	dps := metricByName(t, md, fileio.Table.Keys.Errors).Sum().DataPoints()
	if got := intPoint(t, dps, fileio.KeyOperation, "OPEN", otelconv.AttrErrorType, "ENOENT", fileio.KeyFSType, "tmpfs", fileio.KeyMountpoint, dir); got != 4 {
		t.Errorf("OPEN ENOENT on the mount: %d, want 4", got)
	}
	if got := intPoint(t, dps, fileio.KeyOperation, "MKDIR", otelconv.AttrErrorType, "EEXIST", fileio.KeyFSType, "tmpfs", fileio.KeyMountpoint, dir); got != 3 {
		t.Errorf("MKDIR EEXIST on the mount: %d, want 3", got)
	}
}

// ioEvents returns the io events on the mount at dir (the resolver names them).
func (c *capture) ioEvents(dir string) []event.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []event.Event
	for _, ev := range c.events {
		if ev.Protocol == proto.IO && ev.ServerString() != "" && filepath.Dir(ev.ServerString()) == dir {
			out = append(out, ev)
		}
	}
	return out
}
