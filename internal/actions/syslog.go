package actions

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// syslogBlock is how much of a syslog file is read at a time, going backward.
const syslogBlock = 64 << 10

// stampMax is the most bytes of a line's start a timestamp can take
// ("2006-01-02T15:04:05.999999999-07:00" is 35).
const stampMax = 40

// syslogAction copies, from the first existing file among paths, the lines whose
// timestamps fall in the lookback window (env.Since to env.Until). It reads the file
// backward from its size when opened, and stops at the first line older than the
// window, so a huge log costs only the window's bytes. Lines without a timestamp
// (continuations of a message) go with the line before them. When the window holds
// more than the output limit, the newest lines are kept and the cut is recorded. A
// file in which no line has a timestamp aod reads is copied from its end, unfiltered,
// and the action says so.
func syslogAction(paths []string, missing string, zone *time.Location) Action {
	return Action{Name: NameSyslogs, Run: func(ctx context.Context, env *Env, out *Output, r *Result) error {
		f, err := openFirst(paths, missing, r)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", r.Source)
		}
		win := syslogWindow{since: env.Since.Truncate(time.Second), until: env.Until, zone: zone}
		if win.until.IsZero() {
			win.until = time.Now()
		}
		end := st.Size()
		limit := out.Remaining()
		start, found, cut, err := win.find(ctx, f, end, limit)
		if err != nil {
			return fmt.Errorf("read %s: %w", r.Source, err)
		}
		w, err := out.Create(MemberSyslogs)
		if err != nil {
			return err
		}
		if !found {
			if err := copyTail(ctx, f, end, limit, w); err != nil {
				return err
			}
			return fmt.Errorf("no line at the end of %s has a timestamp aod reads (Mmm dd hh:mm:ss or RFC 3339); its end was copied unfiltered", r.Source)
		}
		if cut {
			out.MarkTruncated()
		}
		return win.copy(ctx, io.NewSectionReader(f, start, end-start), w)
	}}
}

// openFirst opens the first of paths that exists and records it as r's source.
func openFirst(paths []string, missing string, r *Result) (*os.File, error) {
	for _, p := range paths {
		f, err := openSource(p, missing)
		var skip *skipError
		if errors.As(err, &skip) {
			continue
		}
		if err != nil {
			return nil, err
		}
		r.Source = p
		return f, nil
	}
	return nil, Skip("%s", missing)
}

// copyTail copies the whole lines of f's last limit bytes before end.
func copyTail(ctx context.Context, f io.ReaderAt, end, limit int64, w io.Writer) error {
	start := max(end-limit, 0)
	if start > 0 {
		// Begin at a line boundary: skip the partial first line.
		br := bufio.NewReader(io.NewSectionReader(f, start, end-start))
		skipped, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) && !errors.Is(err, io.EOF) {
			return err
		}
		start += int64(len(skipped))
	}
	_, err := io.Copy(w, ctxReader{ctx, io.NewSectionReader(f, start, end-start)})
	return err
}

// syslogWindow selects lines by their timestamps. since is whole seconds, as the
// traditional format is.
type syslogWindow struct {
	since, until time.Time
	zone         *time.Location // of timestamps that do not say theirs
}

// in reports whether a line's timestamp is in the window, and whether it is older;
// ok is false for a line without one.
func (w *syslogWindow) in(line []byte) (in, older, ok bool) {
	t, ok := syslogTime(line, w.until, w.zone)
	if !ok {
		return false, false, false
	}
	older = t.Before(w.since)
	return !older && !t.After(w.until), older, true
}

// find walks f[0:end) backward, line by line, and returns where the window's
// lines start. It stops at the first line older than the window, or once the lines
// from the candidate start to end exceed limit (cut: older lines of the window are
// left out; the newest is always taken, for the writer to cut), or after scanning 2*limit bytes more (cut too: lines newer than the window
// or without timestamps filled them). found is false when no line had a timestamp.
func (w *syslogWindow) find(ctx context.Context, f io.ReaderAt, end, limit int64) (start int64, found, cut bool, err error) {
	start = end
	scanMax := 2*limit + syslogBlock
	err = scanBack(ctx, f, end, func(off int64, head []byte) bool {
		in, older, ok := w.in(head)
		found = found || ok
		switch {
		case older:
			return false
		case in && end-off > limit && start < end:
			cut = true
			return false
		case in:
			start = off
		}
		if end-off > scanMax {
			cut = true
			return false
		}
		return true
	})
	return start, found, cut, err
}

// copy writes the lines of r in the window, each followed by its continuations.
// Lines longer than the reader's buffer are handled in pieces.
func (w *syslogWindow) copy(ctx context.Context, r io.Reader, dst io.Writer) error {
	br := bufio.NewReaderSize(ctxReader{ctx, r}, syslogBlock)
	keep, atStart := true, true
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if atStart {
				if in, _, ok := w.in(chunk); ok {
					keep = in
				}
			}
			if keep {
				if _, werr := dst.Write(chunk); werr != nil {
					return werr
				}
			}
			atStart = chunk[len(chunk)-1] == '\n'
		}
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil && !errors.Is(err, bufio.ErrBufferFull):
			return err
		}
	}
}

// scanBack calls fn with the offset and first bytes (up to stampMax, never past the
// line's end) of every line of f[0:end), the last line first, until fn returns false.
func scanBack(ctx context.Context, f io.ReaderAt, end int64, fn func(off int64, head []byte) bool) error {
	buf := make([]byte, min(syslogBlock, end)+stampMax)
	var carry [stampMax]byte // the first bytes after the current block
	nc := 0
	for pos := end; pos > 0; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(syslogBlock, pos))
		pos -= int64(n)
		if _, err := f.ReadAt(buf[:n], pos); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		copy(buf[n:], carry[:nc])
		blk := buf[:n+nc]
		for i := n - 1; i >= -1; i-- {
			if i >= 0 && blk[i] != '\n' {
				continue
			}
			if i == -1 && pos > 0 {
				break // the line goes on in the block before
			}
			off := pos + int64(i) + 1
			if off == end {
				continue // after the final newline: no line
			}
			head := blk[i+1 : min(i+1+stampMax, len(blk))]
			if j := bytes.IndexByte(head, '\n'); j >= 0 {
				head = head[:j]
			}
			if !fn(off, head) {
				return nil
			}
		}
		nc = copy(carry[:], buf[:n])
	}
	return nil
}

var monthAbbr = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// syslogTime reads the timestamp a syslog file line starts with, in rsyslog's two file
// formats: the traditional "Mmm dd hh:mm:ss" (RSYSLOG_TraditionalFileFormat, also
// syslog-ng's and busybox's), which has no year and no zone, and RFC 3339
// "2006-01-02T15:04:05.000000+07:00" (RSYSLOG_FileFormat, rsyslog's default on recent
// distributions), also accepted with a space for the T and without a zone. A missing
// year is the one that puts the time at most 31 days after ref (so December's lines
// read in January are last year's); a missing zone is zone.
func syslogTime(line []byte, ref time.Time, zone *time.Location) (time.Time, bool) {
	if t, ok := traditionalTime(line, ref, zone); ok {
		return t, true
	}
	return isoTime(line, zone)
}

func traditionalTime(b []byte, ref time.Time, zone *time.Location) (time.Time, bool) {
	// "Jan _2 15:04:05", then the end of the line or a space.
	if len(b) < 15 || (len(b) > 15 && b[15] != ' ') || b[3] != ' ' || b[6] != ' ' {
		return time.Time{}, false
	}
	month := 0
	for i, m := range monthAbbr {
		if string(b[:3]) == m {
			month = i + 1
		}
	}
	day, ok := digits(b[4:6], true)
	if month == 0 || !ok || day < 1 || day > 31 {
		return time.Time{}, false
	}
	h, m, s, ok := hms(b[7:15])
	if !ok {
		return time.Time{}, false
	}
	t := time.Date(ref.Year(), time.Month(month), day, h, m, s, 0, zone)
	if t.Sub(ref) > 31*24*time.Hour {
		t = time.Date(ref.Year()-1, time.Month(month), day, h, m, s, 0, zone)
	}
	return t, true
}

// isoTime reads "YYYY-MM-DD[T ]hh:mm:ss[.fraction][Z|±hh:mm]" ending the line or
// followed by a space.
func isoTime(b []byte, zone *time.Location) (time.Time, bool) {
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != ' ') {
		return time.Time{}, false
	}
	y, ok1 := digits(b[0:4], false)
	mo, ok2 := digits(b[5:7], false)
	d, ok3 := digits(b[8:10], false)
	h, mi, s, ok4 := hms(b[11:19])
	if !ok1 || !ok2 || !ok3 || !ok4 || mo < 1 || mo > 12 || d < 1 || d > 31 {
		return time.Time{}, false
	}
	i, nsec := 19, 0
	if i < len(b) && (b[i] == '.' || b[i] == ',') {
		j, scale := i+1, int(time.Second)
		for ; j < len(b) && b[j] >= '0' && b[j] <= '9'; j++ {
			if scale > 1 {
				scale /= 10
				nsec += int(b[j]-'0') * scale
			}
		}
		if j == i+1 {
			return time.Time{}, false
		}
		i = j
	}
	loc := zone
	switch {
	case i < len(b) && b[i] == 'Z':
		loc, i = time.UTC, i+1
	case i+6 <= len(b) && (b[i] == '+' || b[i] == '-') && b[i+3] == ':':
		oh, ok1 := digits(b[i+1:i+3], false)
		om, ok2 := digits(b[i+4:i+6], false)
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		off := (oh*60 + om) * 60
		if b[i] == '-' {
			off = -off
		}
		loc, i = time.FixedZone("", off), i+6
	}
	if i < len(b) && b[i] != ' ' {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(mo), d, h, mi, s, nsec, loc), true
}

// hms reads "hh:mm:ss"; a second of 60 (a leap second) is allowed.
func hms(b []byte) (h, m, s int, ok bool) {
	if b[2] != ':' || b[5] != ':' {
		return 0, 0, 0, false
	}
	h, ok1 := digits(b[0:2], false)
	m, ok2 := digits(b[3:5], false)
	s, ok3 := digits(b[6:8], false)
	return h, m, s, ok1 && ok2 && ok3 && h < 24 && m < 60 && s <= 60
}

// digits reads a decimal number; with spacePad, leading spaces are allowed (" 6").
func digits(b []byte, spacePad bool) (int, bool) {
	v, seen := 0, false
	for _, c := range b {
		switch {
		case c == ' ' && spacePad && !seen:
		case c >= '0' && c <= '9':
			v, seen = v*10+int(c-'0'), true
		default:
			return 0, false
		}
	}
	return v, seen
}
