package actions

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// cet is the zone of the traditional-format lines below (they do not say theirs).
var cet = time.FixedZone("CET", 3600)

// A Debian 11 /var/log/syslog (RSYSLOG_TraditionalFileFormat, local time), around a
// cifs reconnect at 10:24:13 CET.
const traditionalLog = `Dec  6 10:17:01 vm1 CRON[1180]: (root) CMD (   cd / && run-parts --report /etc/cron.hourly)
Dec  6 10:19:59 vm1 systemd[1]: Starting Cleanup of Temporary Directories...
 continuation of the 10:19:59 message
Dec  6 10:21:07 vm1 kernel: [  812.114203] CIFS: Attempting to mount \\127.0.0.1\share
Dec  6 10:24:13 vm1 kernel: [ 998.410021] CIFS: VFS: \\127.0.0.1 has not responded in 180 seconds. Reconnecting...
 continuation of the 10:24:13 message
Dec  6 10:24:13 vm1 kernel: [ 998.412990] CIFS: VFS: \\127.0.0.1 Send error in SessSetup = -11
Dec  6 10:26:30 vm1 systemd[1]: Started Session 4 of user root.
`

// The same lines as Debian 12 writes them (RSYSLOG_FileFormat, RFC 3339 in UTC and
// one with an offset).
const rfc3339Log = `2026-12-06T09:17:01.480112+00:00 vm1 CRON[1180]: (root) CMD (   cd / && run-parts --report /etc/cron.hourly)
2026-12-06T09:19:59.102334+00:00 vm1 systemd[1]: Starting Cleanup of Temporary Directories...
2026-12-06T09:21:07.995871+00:00 vm1 kernel: CIFS: Attempting to mount \\127.0.0.1\share
2026-12-06T10:24:13.410021+01:00 vm1 kernel: CIFS: VFS: \\127.0.0.1 has not responded in 180 seconds. Reconnecting...
2026-12-06T09:24:13.412990Z vm1 kernel: CIFS: VFS: \\127.0.0.1 Send error in SessSetup = -11
2026-12-06T09:26:30.000001+00:00 vm1 systemd[1]: Started Session 4 of user root.
`

// window is the 10:20:00–10:25:00 CET lookback of an anomaly at 10:25.
func window() *Env {
	return &Env{Since: time.Date(2026, 12, 6, 10, 20, 0, 0, cet), Until: time.Date(2026, 12, 6, 10, 25, 0, 0, cet)}
}

func writeLog(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "syslog")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runSyslog(t *testing.T, paths []string, env *Env, limit int64) (Result, string) {
	t.Helper()
	r, mem := run(t, syslogAction(paths, "no syslog", cet), env, limit, time.Minute)
	return r, mem.get(MemberSyslogs)
}

func TestSyslogKeepsTheLookbackWindow(t *testing.T) {
	for _, c := range []struct {
		name, log, want string
	}{
		{"traditional", traditionalLog, `Dec  6 10:21:07 vm1 kernel: [  812.114203] CIFS: Attempting to mount \\127.0.0.1\share
Dec  6 10:24:13 vm1 kernel: [ 998.410021] CIFS: VFS: \\127.0.0.1 has not responded in 180 seconds. Reconnecting...
 continuation of the 10:24:13 message
Dec  6 10:24:13 vm1 kernel: [ 998.412990] CIFS: VFS: \\127.0.0.1 Send error in SessSetup = -11
`},
		{"rfc3339", rfc3339Log, `2026-12-06T09:21:07.995871+00:00 vm1 kernel: CIFS: Attempting to mount \\127.0.0.1\share
2026-12-06T10:24:13.410021+01:00 vm1 kernel: CIFS: VFS: \\127.0.0.1 has not responded in 180 seconds. Reconnecting...
2026-12-06T09:24:13.412990Z vm1 kernel: CIFS: VFS: \\127.0.0.1 Send error in SessSetup = -11
`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := writeLog(t, c.log)
			r, got := runSyslog(t, []string{filepath.Join(filepath.Dir(p), "messages"), p}, window(), 1<<20)
			if r.Status != StatusOK || r.Source != p || r.Truncated || got != c.want {
				t.Fatalf("result %+v\ngot:\n%s\nwant:\n%s", r, got, c.want)
			}
		})
	}
}

// Lines of December read in January belong to the year before.
func TestSyslogWindowAcrossNewYear(t *testing.T) {
	p := writeLog(t, "Dec 31 23:54:00 vm1 old\nDec 31 23:58:30 vm1 before midnight\nJan  1 00:01:02 vm1 after midnight\n")
	env := &Env{Since: time.Date(2026, 12, 31, 23, 57, 0, 0, cet), Until: time.Date(2027, 1, 1, 0, 2, 0, 0, cet)}
	if r, got := runSyslog(t, []string{p}, env, 1<<20); got != "Dec 31 23:58:30 vm1 before midnight\nJan  1 00:01:02 vm1 after midnight\n" {
		t.Fatalf("result %+v, got %q", r, got)
	}
}

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// A large log is read backward only as far as the window: megabytes of older lines
// are not read.
func TestSyslogReadsOnlyTheWindowOfALargeLog(t *testing.T) {
	var b strings.Builder
	old := time.Date(2026, 12, 6, 8, 0, 0, 0, cet)
	for i := 0; b.Len() < 8<<20; i++ {
		fmt.Fprintf(&b, "%s vm1 app[42]: old line %d\n", old.Add(time.Duration(i)*time.Millisecond).Format(time.Stamp), i)
	}
	b.WriteString(traditionalLog)
	data := b.String()
	env := window()
	w := syslogWindow{since: env.Since, until: env.Until, zone: cet}
	f := &countingReaderAt{r: strings.NewReader(data)}
	start, found, cut, err := w.find(context.Background(), f, int64(len(data)), 1<<20)
	if err != nil || !found || cut {
		t.Fatalf("find: found %v cut %v err %v", found, cut, err)
	}
	if want := strings.Index(data, "Dec  6 10:21:07"); start != int64(want) {
		t.Errorf("window starts at %d, want %d", start, want)
	}
	if n := f.n.Load(); n > 2*syslogBlock {
		t.Errorf("read %d bytes of a %d-byte log to find a %d-byte window", n, len(data), len(data)-int(start))
	}
}

// A window larger than the output limit keeps its newest lines, whole, and records
// the cut.
func TestSyslogWindowOverTheLimitKeepsTheNewest(t *testing.T) {
	p := writeLog(t, traditionalLog)
	r, got := runSyslog(t, []string{p}, window(), 200)
	want := "Dec  6 10:24:13 vm1 kernel: [ 998.412990] CIFS: VFS: \\\\127.0.0.1 Send error in SessSetup = -11\n"
	if r.Status != StatusOK || !r.Truncated || got != want {
		t.Fatalf("result %+v, got %q", r, got)
	}
}

// A line longer than the read block is found and copied whole.
func TestSyslogLongLine(t *testing.T) {
	long := "Dec  6 10:22:00 vm1 app: " + strings.Repeat("x", 3*syslogBlock) + "\n"
	p := writeLog(t, "Dec  6 10:00:00 vm1 app: old\n"+long+"Dec  6 10:23:00 vm1 app: short\n")
	if r, got := runSyslog(t, []string{p}, window(), 1<<20); got != long+"Dec  6 10:23:00 vm1 app: short\n" {
		t.Fatalf("result %+v, got %d bytes", r, len(got))
	}
}

// A file without a timestamp aod reads is copied from its end, and the action says so.
func TestSyslogUnknownFormatIsCopiedAndReported(t *testing.T) {
	p := writeLog(t, "<13>1 garbage\nmore garbage\nlast line\n")
	r, got := runSyslog(t, []string{p}, window(), 20)
	if r.Status != StatusFailed || !strings.Contains(r.Error, "no line at the end of "+p+" has a timestamp") || got != "last line\n" {
		t.Fatalf("result %+v, got %q", r, got)
	}
}

func TestSyslogMissingSymlinkAndFIFO(t *testing.T) {
	dir := t.TempDir()
	r, _ := runSyslog(t, []string{filepath.Join(dir, "syslog")}, window(), 100)
	if r.Status != StatusSkipped || r.Skipped != "no syslog" {
		t.Errorf("missing: %+v", r)
	}
	secret := writeLog(t, traditionalLog)
	link := filepath.Join(dir, "link")
	os.Symlink(secret, link)
	if r, got := runSyslog(t, []string{link}, window(), 1<<20); r.Status != StatusFailed || got != "" {
		t.Errorf("symlink followed: %+v, %q", r, got)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if r, _ := runSyslog(t, []string{fifo}, window(), 1<<20); r.Status != StatusFailed || !strings.Contains(r.Error, "not a regular file") {
		t.Errorf("fifo: %+v", r)
	}
}

func TestSyslogTime(t *testing.T) {
	ref := time.Date(2026, 12, 6, 10, 25, 0, 0, cet)
	for _, c := range []struct {
		line string
		want time.Time
	}{
		{"Dec  6 10:24:13 vm1 kernel: x", time.Date(2026, 12, 6, 10, 24, 13, 0, cet)},
		{"Dec 06 10:24:13", time.Date(2026, 12, 6, 10, 24, 13, 0, cet)},
		{"Jan 31 23:59:60 h", time.Date(2026, 2, 1, 0, 0, 0, 0, cet)},
		{"2026-12-06T09:24:13.412990Z vm1", time.Date(2026, 12, 6, 9, 24, 13, 412990000, time.UTC)},
		{"2026-12-06T10:24:13.410021+01:00 vm1", time.Date(2026, 12, 6, 9, 24, 13, 410021000, time.UTC)},
		{"2026-12-06T04:24:13-05:30 vm1", time.Date(2026, 12, 6, 9, 54, 13, 0, time.UTC)},
		{"2026-12-06 10:24:13,5 vm1", time.Date(2026, 12, 6, 10, 24, 13, 500000000, cet)},
	} {
		got, ok := syslogTime([]byte(c.line), ref, cet)
		if !ok || !got.Equal(c.want) {
			t.Errorf("%q: %v %v, want %v", c.line, got, ok, c.want)
		}
	}
	for _, bad := range []string{"", "Dec", "Dex  6 10:24:13 h", "Dec 32 10:24:13 h", "Dec  6 24:00:00 h",
		"Dec  6 10:24:13x", "2026-13-06T10:24:13Z", "2026-12-06T10:24:13.Z", "2026-12-06T10:24:13+0100 h",
		"2026-12-06T10:24", " continuation", "Dec  6 1:24:13 h"} {
		if got, ok := syslogTime([]byte(bad), ref, cet); ok {
			t.Errorf("%q read as %v", bad, got)
		}
	}
}

func FuzzSyslogTime(f *testing.F) {
	for _, l := range strings.Split(traditionalLog+rfc3339Log, "\n") {
		f.Add(l)
	}
	ref := time.Date(2026, 12, 6, 10, 25, 0, 0, cet)
	f.Fuzz(func(t *testing.T, line string) {
		got, ok := syslogTime([]byte(line), ref, cet)
		if !ok {
			return
		}
		// A traditional timestamp lands in the year before ref's end; an RFC 3339 one
		// reads back the same from its canonical form.
		if line[0] >= 'A' && line[0] <= 'Z' {
			if got.Sub(ref) > 32*24*time.Hour || ref.Sub(got) > 367*24*time.Hour {
				t.Fatalf("%q: %v is not within a year of %v", line, got, ref)
			}
			return
		}
		back, ok := isoTime([]byte(got.Format(time.RFC3339Nano)), cet)
		if !ok || !back.Equal(got) {
			t.Fatalf("%q: %v does not read back (%v %v)", line, got, back, ok)
		}
	})
}

// FuzzSyslogWindow checks, for any file content, that the action's output is whole
// lines of the file in order, and that every timestamped one is in the window.
func FuzzSyslogWindow(f *testing.F) {
	f.Add([]byte(traditionalLog), int64(1<<20))
	f.Add([]byte(rfc3339Log), int64(200))
	f.Add([]byte("Dec  6 10:22:00 a\nno newline at the end"), int64(10))
	env := window()
	f.Fuzz(func(t *testing.T, data []byte, limit int64) {
		limit = max(limit%(1<<16), 1)
		w := syslogWindow{since: env.Since, until: env.Until, zone: cet}
		start, found, _, err := w.find(context.Background(), bytes.NewReader(data), int64(len(data)), limit)
		if err != nil || start < 0 || start > int64(len(data)) {
			t.Fatalf("find: %d %v %v", start, found, err)
		}
		if start > 0 && start < int64(len(data)) && data[start-1] != '\n' {
			t.Fatalf("window starts at %d, inside a line", start)
		}
		var out bytes.Buffer
		if err := w.copy(context.Background(), bytes.NewReader(data[start:]), &out); err != nil {
			t.Fatal(err)
		}
		// Each output line is a whole input line, in order (the file's last line may have
		// gained its newline).
		in := bytes.SplitAfter(data[start:], []byte("\n"))
		j := 0
		for _, line := range bytes.SplitAfter(out.Bytes(), []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			for j < len(in) && !bytes.Equal(in[j], line) && !(j == len(in)-1 && bytes.Equal(line, append(bytes.Clone(in[j]), '\n'))) {
				j++
			}
			if j == len(in) {
				t.Fatalf("output line %q is not a line of the input after %d, in order", line, start)
			}
			j++
			if in, _, ok := w.in(line); ok && !in {
				t.Fatalf("line %q is outside the window", line)
			}
		}
	})
}
