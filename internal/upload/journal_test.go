package upload

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// TestJournalRecovery reads back a journal that a crash left with a torn last
// line and a damaged one in the middle: the last state of each bundle wins, the
// damage is reported, and the rewrite keeps only what keep accepts.
func TestJournalRecovery(t *testing.T) {
	dir := t.TempDir()
	j, live, warns, err := openJournal(dir, func(record) bool { return true })
	if err != nil || len(live) != 0 || len(warns) != 0 {
		t.Fatalf("fresh journal: %v %v %v", live, warns, err)
	}
	for _, r := range []record{
		{Bundle: "a", Dest: "s3", State: StatePending},
		{Bundle: "a", Dest: "s3", State: StateInProgress, Attempts: 1},
		{Bundle: "b", Dest: "s3", State: StateUploaded, Outcome: OutcomeUploaded},
		{Bundle: "a", Dest: "azure", State: StatePending},
	} {
		if err := j.append(r); err != nil {
			t.Fatal(err)
		}
	}
	j.close()
	path := filepath.Join(dir, journalName)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Damage in the middle, then a line torn by a crash.
	_, _ = f.WriteString("{not json\n" + `{"bundle":"a","dest":"s3","state":"uploa`)
	f.Close()

	j, live, warns, err = openJournal(dir, func(r record) bool { return r.Bundle != "b" })
	if err != nil {
		t.Fatal(err)
	}
	j.close()
	if len(warns) != 2 || !strings.Contains(warns[0], ":5: not a state record") || !strings.Contains(warns[1], ":6: incomplete last line") {
		t.Errorf("warnings %q", warns)
	}
	if r := live[entryKey{"a", "s3"}]; r.State != StateInProgress || r.Attempts != 1 {
		t.Errorf("a at s3: %+v", r)
	}
	if _, ok := live[entryKey{"b", "s3"}]; ok {
		t.Error("b was not dropped")
	}
	if len(live) != 2 {
		t.Errorf("live %v", live)
	}
	data, _ := os.ReadFile(path)
	if n := strings.Count(string(data), "\n"); n != 2 || strings.Contains(string(data), "not json") {
		t.Errorf("rewritten journal:\n%s", data)
	}
}

// FuzzJournal reads arbitrary journals: never a crash, every record it keeps
// reads back unchanged once written again, and its anomaly link (hand-edited,
// damaged) makes records that either name a span or none.
func FuzzJournal(f *testing.F) {
	f.Add([]byte(`{"bundle":"a","dest":"s3","state":"pending","anomaly":{"trace_id":"0a010200000000000000000000000000","span_id":"0b03000000000000","protocol":"smb","type":"latency","rule":"count"}}` + "\n"))
	f.Add([]byte(`{"bundle":"a","dest":"s3","state":"uploaded","anomaly":{"trace_id":"zz","span_id":"0b03"}}` + "\n{not json\n"))
	f.Add([]byte(`{"bundle":"a","dest":"s3","state":"lost","anomaly":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, _, err := parseJournal(bytes.NewReader(data), journalName)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		for _, r := range recs {
			line, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			buf.Write(append(line, '\n'))
		}
		again, warns, err := parseJournal(&buf, journalName)
		if err != nil || len(warns) != 0 || !reflect.DeepEqual(again, recs) {
			t.Fatalf("written again: %+v, %q, %v; was %+v", again, warns, err, recs)
		}
		for _, r := range recs {
			var o Outcome
			if r.Anomaly != nil {
				o.Anomaly = *r.Anomaly
			}
			lr := Logs(pcommon.NewResource(), o, time.Time{}).ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
			if lr.TraceID().IsEmpty() != lr.SpanID().IsEmpty() {
				t.Fatalf("record names trace %s span %s", lr.TraceID(), lr.SpanID())
			}
		}
	})
}
