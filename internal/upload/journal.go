package upload

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// The state store is an append-only journal of JSON lines, one per state change,
// each written with one write(2) and made durable (fdatasync) before the change
// takes effect: a bundle is journaled in_progress before its PUT is sent, and
// uploaded only after the store acknowledged it. At start the journal is read
// back (the last line of a bundle and destination wins; a line torn by a crash is
// dropped) and rewritten with only what is still live, so it stays as small as
// the set of bundles on disk.
//
// Why a journal and not an embedded database (bbolt): the state is a few hundred
// records at most (retention bounds the bundles), written a handful of times per
// bundle, read once at start. A journal needs no new dependency, no page file or
// mmap, stays readable with `cat` when diagnosing a host, and its one crash mode (a
// torn last line) is trivially detected. Nothing here needs a B-tree.
const journalName = "journal.jsonl"

// record is one journal line: the state of one bundle at one destination.
type record struct {
	Bundle   string    `json:"bundle"`
	Dest     string    `json:"dest"`
	State    State     `json:"state"`
	At       time.Time `json:"at"`
	Attempts int       `json:"attempts,omitempty"`
	Key      string    `json:"key,omitempty"`
	SHA256   string    `json:"sha256,omitempty"` // hex
	Bytes    int64     `json:"bytes,omitempty"`
	// Stored says the bundle object is in the store; only its manifest is missing.
	Stored  bool   `json:"stored,omitempty"`
	Outcome string `json:"outcome,omitempty"` // terminal states: OutcomeUploaded, ...
	Reason  string `json:"reason,omitempty"`  // last failure's reason
	Error   string `json:"error,omitempty"`   // last failure
	// Anomaly is what the bundle was written for, kept so that the record of an
	// upload finished after a restart still names it.
	Anomaly *Link `json:"anomaly,omitempty"`
}

type entryKey struct{ bundle, dest string }

// journal appends records to the state file.
type journal struct {
	f *os.File
}

// openJournal reads the journal in dir (created if absent), keeps the records for
// which keep returns true, rewrites the file with only those, and opens it for
// appending. Unreadable lines are returned as warnings, never as a failure: a
// damaged journal costs at most a repeated conditional PUT, which the store
// answers with "already there".
func openJournal(dir string, keep func(record) bool) (*journal, map[entryKey]record, []string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, nil, fmt.Errorf("upload: state directory: %w", err)
	}
	path := filepath.Join(dir, journalName)
	recs, warns, err := readJournal(path)
	if err != nil {
		return nil, nil, nil, err
	}
	live := map[entryKey]record{}
	var order []entryKey
	for _, r := range recs {
		k := entryKey{r.Bundle, r.Dest}
		if _, seen := live[k]; !seen {
			order = append(order, k)
		}
		live[k] = r
	}
	var buf bytes.Buffer
	for _, k := range order {
		r := live[k]
		if !keep(r) {
			delete(live, k)
			continue
		}
		line, _ := json.Marshal(r)
		buf.Write(append(line, '\n'))
	}
	if err := rewrite(path, buf.Bytes()); err != nil {
		return nil, nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("upload: state journal: %w", err)
	}
	return &journal{f: f}, live, warns, nil
}

// maxLine bounds one journal line; longer ones are damage.
const maxLine = 64 << 10

func readJournal(path string) ([]record, []string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("upload: state journal: %w", err)
	}
	defer f.Close()
	return parseJournal(f, path)
}

// parseJournal reads the records of a journal from in; name names it in warnings.
func parseJournal(in io.Reader, name string) ([]record, []string, error) {
	var (
		recs  []record
		warns []string
	)
	r := bufio.NewReaderSize(in, maxLine)
	for n := 1; ; n++ {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Skip the rest of an over-long line.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			warns = append(warns, fmt.Sprintf("%s:%d: line too long; ignored", name, n))
			if err != nil {
				break
			}
			continue
		}
		if err == io.EOF {
			if len(line) > 0 {
				warns = append(warns, fmt.Sprintf("%s:%d: incomplete last line (a crash while writing it); ignored", name, n))
			}
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("upload: state journal: %w", err)
		}
		var rec record
		if err := json.Unmarshal(line, &rec); err != nil || rec.Bundle == "" || rec.Dest == "" || !rec.State.valid() {
			warns = append(warns, fmt.Sprintf("%s:%d: not a state record; ignored", name, n))
			continue
		}
		recs = append(recs, rec)
	}
	return recs, warns, nil
}

// rewrite replaces path with data atomically and durably.
func rewrite(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("upload: state journal: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("upload: state journal: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// append writes r durably.
func (j *journal) append(r record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if len(line) >= maxLine {
		return fmt.Errorf("upload: state record of %s too long", r.Bundle)
	}
	if _, err := j.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("upload: state journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("upload: state journal: %w", err)
	}
	return nil
}

func (j *journal) close() error { return j.f.Close() }
