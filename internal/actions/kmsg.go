package actions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// kmsgRecordMax is the largest record /dev/kmsg returns (the kernel's
// CONSOLE_EXT_LOG_MAX); a smaller buffer makes read fail with EINVAL.
const kmsgRecordMax = 8192

// kmsgRecord is one /dev/kmsg record.
type kmsgRecord struct {
	Level    int           // syslog level 0 (emerg) .. 7 (debug)
	Facility int           // syslog facility, 0 for the kernel
	Seq      uint64        // record sequence number
	Time     time.Duration // since boot (the printk clock)
	Message  string        // the text, with the kernel's \xNN escapes kept
}

var levelNames = [8]string{"emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"}

// parseKmsg decodes one record: "prio,seq,usec,flags[,...];message\n" followed by
// optional " KEY=value" continuation lines, which are dropped.
func parseKmsg(b []byte) (kmsgRecord, error) {
	head, msg, ok := bytes.Cut(b, []byte{';'})
	if !ok {
		return kmsgRecord{}, errors.New("kmsg: record without ';'")
	}
	if i := bytes.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	fields := bytes.SplitN(head, []byte{','}, 4)
	if len(fields) < 3 {
		return kmsgRecord{}, fmt.Errorf("kmsg: header %q has %d fields, want at least 3", head, len(fields))
	}
	prio, err := strconv.ParseUint(string(fields[0]), 10, 32)
	if err != nil {
		return kmsgRecord{}, fmt.Errorf("kmsg: priority: %w", err)
	}
	seq, err := strconv.ParseUint(string(fields[1]), 10, 64)
	if err != nil {
		return kmsgRecord{}, fmt.Errorf("kmsg: sequence: %w", err)
	}
	usec, err := strconv.ParseUint(string(fields[2]), 10, 63)
	if err != nil || usec > uint64(time.Duration(1<<63-1)/time.Microsecond) {
		return kmsgRecord{}, fmt.Errorf("kmsg: timestamp %q out of range", fields[2])
	}
	return kmsgRecord{Level: int(prio & 7), Facility: int(prio >> 3), Seq: seq,
		Time: time.Duration(usec) * time.Microsecond, Message: string(msg)}, nil
}

// format writes the record like `dmesg -x --time-format iso`, with the wall-clock time
// derived from boot as the first field.
func (k *kmsgRecord) format(w io.Writer, boot time.Time) error {
	sec, usec := int64(k.Time/time.Second), int64(k.Time%time.Second/time.Microsecond)
	_, err := fmt.Fprintf(w, "%s [%5d.%06d] %s: %s\n",
		boot.Add(k.Time).UTC().Format("2006-01-02T15:04:05.000000Z"), sec, usec, levelNames[k.Level], k.Message)
	return err
}

// monotonicNow is CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns and (up to clock
// drift) of printk timestamps.
func monotonicNow() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

// readKmsg copies the kernel log records whose time falls in [since, until] from the
// device at path, reading without blocking and stopping at the end of the buffer. The
// printk clock does not run during suspend, so wall times are approximate on a host
// that has slept.
func readKmsg(ctx context.Context, path string, w io.Writer, since, until time.Time) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return Skip("%s does not exist", path)
		}
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer unix.Close(fd)
	boot := time.Now().Add(-monotonicNow())
	buf := make([]byte, kmsgRecordMax)
	var bad int
read:
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := unix.Read(fd, buf)
		switch {
		case errors.Is(err, unix.EAGAIN), err == nil && n == 0:
			break read
		case errors.Is(err, unix.EPIPE):
			continue // records were overwritten while reading; the next read resyncs
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return fmt.Errorf("read %s: %w", path, err)
		}
		rec, err := parseKmsg(buf[:n])
		if err != nil {
			bad++
			continue
		}
		at := boot.Add(rec.Time)
		if at.Before(since) || at.After(until) {
			continue
		}
		if err := rec.format(w, boot); err != nil {
			return err
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d unparsable records in %s", bad, path)
	}
	return nil
}
