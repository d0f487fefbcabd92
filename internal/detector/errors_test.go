package detector

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/nfs"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/smb"
)

// Errno values the tests use.
const (
	eACCES = 13
	eIO    = 5
	eNOENT = 2
)

func repeat(n int, gap time.Duration, mk func(end time.Duration) event.Event) []event.Event {
	var evs []event.Event
	for i := range n {
		evs = append(evs, mk(time.Duration(i)*gap))
	}
	return evs
}

func TestErrorRules(t *testing.T) {
	timeout, eof := status("STATUS_IO_TIMEOUT"), status("STATUS_END_OF_FILE")
	denied := status("STATUS_ACCESS_DENIED")
	readTimeouts := ErrorRule{Name: "read_timeouts", AcceptableCount: 2,
		Commands: proto.CommandSet{}.With(smb.Read), Statuses: []uint32{timeout}}
	anyTimeout := ErrorRule{Name: "timeouts", AcceptableCount: 3, Statuses: []uint32{timeout}}
	anyWrite := ErrorRule{Name: "writes", AcceptableCount: 2, Commands: proto.CommandSet{}.With(smb.Write)}
	errnos := ErrorRule{Name: "errnos", AcceptableCount: 2, Errnos: []int32{eACCES, eIO}}
	mixed := ErrorRule{Name: "mixed", AcceptableCount: 2, Statuses: []uint32{timeout}, Errnos: []int32{eACCES}}
	params := func(rules ...ErrorRule) ErrorParams {
		return ErrorParams{Rules: rules, Window: time.Second}
	}
	for _, tc := range []struct {
		name   string
		p      ErrorParams
		events []event.Event
		want   []fired
	}{
		{"intersection: command and status both match", params(readTimeouts),
			repeat(2, ms, func(d time.Duration) event.Event { return failed(smb.Read, timeout, 110, d) }),
			[]fired{{1, "read_timeouts", 2, 2, 0}}},
		{"intersection: right status, wrong command", params(readTimeouts),
			repeat(4, ms, func(d time.Duration) event.Event { return failed(smb.Write, timeout, 110, d) }), nil},
		{"intersection: right command, wrong status", params(readTimeouts),
			repeat(4, ms, func(d time.Duration) event.Event { return failed(smb.Read, eof, 0, d) }), nil},
		{"omitted command axis matches any command", params(anyTimeout),
			[]event.Event{failed(smb.Read, timeout, 110, 0), failed(smb.Write, timeout, 110, ms), failed(smb.Create, timeout, 110, 2*ms)},
			[]fired{{2, "timeouts", 3, 3, 0}}},
		{"omitted status axis matches any status", params(anyWrite),
			[]event.Event{failed(smb.Write, eof, 0, 0), failed(smb.Write, denied, eACCES, ms)},
			[]fired{{1, "writes", 2, 2, 0}}},
		{"errno axis", params(errnos),
			[]event.Event{failed(smb.Read, denied, eACCES, 0), failed(smb.Read, 0xC000000F, eNOENT, ms), failed(smb.Create, timeout, eIO, 2*ms)},
			[]fired{{2, "errnos", 2, 2, 0}}},
		{"statuses and errnos are one axis: either matches", params(mixed),
			[]event.Event{failed(smb.Read, eof, 0, 0), failed(smb.Read, denied, eACCES, ms), failed(smb.Read, eof, eIO, 2*ms), failed(smb.Read, timeout, eIO, 3*ms)},
			[]fired{{3, "mixed", 2, 2, 0}}},
		{"rules count independently and one failure can count for two", params(readTimeouts, anyTimeout),
			[]event.Event{failed(smb.Read, timeout, 110, 0), failed(smb.Write, timeout, 110, ms), failed(smb.Read, timeout, 110, 2*ms)},
			[]fired{{2, "read_timeouts", 2, 2, 0}, {2, "timeouts", 3, 3, 0}}},
		{"window boundary", params(readTimeouts),
			[]event.Event{failed(smb.Read, timeout, 110, 0), failed(smb.Read, timeout, 110, time.Second)}, nil},
		{"slow successful requests are not errors", params(anyWrite), burst(3, smb.Write, 0, ms, time.Second),
			[]fired(nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewErrors(tc.p, testEnv(&fakeClock{}))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := feed(t, d.Process, tc.events)
			if !slices.Equal(got, tc.want) {
				t.Errorf("fired %+v, want %+v", got, tc.want)
			}
		})
	}
}

// Rules are indexed 64 at a time by what they name; a failure must still count for
// every rule that takes it, in the rules' order, across those groups.
func TestErrorRulesBeyondSixtyFour(t *testing.T) {
	timeout, denied := status("STATUS_IO_TIMEOUT"), status("STATUS_ACCESS_DENIED")
	var rules []ErrorRule
	for i := range 70 {
		// By default each rule names a status of its own that no failure has.
		rules = append(rules, ErrorRule{Name: fmt.Sprintf("r%d", i), AcceptableCount: 1, Statuses: []uint32{0xC1000000 + uint32(i)}})
	}
	rules[2].Statuses = []uint32{timeout}
	rules[64].Statuses = []uint32{denied, timeout}
	rules[65].Statuses, rules[65].Commands = []uint32{timeout}, proto.CommandSet{}.With(smb.Write)
	rules[66].Statuses, rules[66].Commands = nil, proto.CommandSet{}.With(smb.Read)
	rules[67].Statuses = nil
	rules[69].Statuses, rules[69].Errnos = nil, []int32{eIO}
	d, err := NewErrors(ErrorParams{Rules: rules, Window: time.Second}, testEnv(&fakeClock{}))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := feed(t, d.Process, []event.Event{failed(smb.Read, timeout, eIO, 0)})
	var names []string
	for _, f := range got {
		names = append(names, f.rule)
	}
	if want := []string{"r2", "r64", "r66", "r67", "r69"}; !slices.Equal(names, want) {
		t.Errorf("rules fired %v, want %v", names, want)
	}
}

// The legacy form (acceptable_count + track_commands + track_errors) is one rule; it
// must behave exactly like the same filters written as a named rule.
func TestErrorLegacyEqualsSingleRule(t *testing.T) {
	timeout, denied := status("STATUS_IO_TIMEOUT"), status("STATUS_ACCESS_DENIED")
	filters := ErrorRule{AcceptableCount: 3, Commands: proto.CommandSet{}.With(smb.Read).With(smb.Write), Statuses: []uint32{timeout, denied}}
	legacy, named := filters, filters
	legacy.Name, named.Name = "default", "mine"
	var events []event.Event
	for i := range 40 {
		cmd := []uint16{smb.Read, smb.Write, smb.Create}[i%3]
		st := []uint32{timeout, denied, status("STATUS_END_OF_FILE"), timeout}[i%4]
		events = append(events, failed(cmd, st, 5, time.Duration(i)*100*ms))
	}
	run := func(r ErrorRule) []fired {
		d, err := NewErrors(ErrorParams{Rules: []ErrorRule{r}, Window: time.Second}, testEnv(&fakeClock{}))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := feed(t, d.Process, events)
		for i := range got {
			got[i].rule = ""
		}
		return got
	}
	a, b := run(legacy), run(named)
	if len(a) == 0 || !slices.Equal(a, b) {
		t.Errorf("legacy fired %+v, named rule fired %+v; want the same, non-empty", a, b)
	}
}

func TestErrorAnomalyContents(t *testing.T) {
	clock := &fakeClock{mono: at(time.Second)}
	timeout := status("STATUS_IO_TIMEOUT")
	d, err := NewErrors(ErrorParams{Rules: []ErrorRule{{Name: "severe", AcceptableCount: 1, Statuses: []uint32{timeout}}},
		Window: time.Second, Cooldown: time.Minute}, testEnv(clock))
	if err != nil {
		t.Fatal(err)
	}
	e := failed(smb.Read, timeout, 110, 500*ms)
	out := d.Process([]event.Event{e, failed(smb.Read, timeout, 110, 600*ms), failed(smb.Read, timeout, 110, 700*ms)}, nil)
	if len(out) != 1 {
		t.Fatalf("got %d anomalies, want 1 (cooldown)", len(out))
	}
	a := out[0]
	if a.Type != anomaly.TypeError || a.Rule != "severe" || a.Count != 1 || a.Limit != 1 || a.Window != time.Second ||
		a.FirstEvent != epoch.Add(time.Duration(e.EndNs)) || !equal(a.Events, []event.Event{e}) ||
		!equal(a.TopStatuses, []anomaly.Tally{{Value: "STATUS_IO_TIMEOUT", Count: 1}}) || !equal(a.TopCommands, []anomaly.Tally{{Value: "SMB2_READ", Count: 1}}) {
		t.Errorf("anomaly %+v", a)
	}
	if !strings.Contains(a.Reason, `1 failed SMB requests matching error rule "severe"`) || !strings.Contains(a.Reason, "STATUS_IO_TIMEOUT") {
		t.Errorf("reason %q does not name the requests, the rule and the status", a.Reason)
	}
	if s := d.Stats(); s.Emitted != 1 || s.Suppressed != 2 {
		t.Errorf("stats %+v, want 1 emitted, 2 suppressed", s)
	}
}

// An NFS anomaly speaks of NFS RPCs and NFS statuses.
func TestErrorAnomalyOfNFS(t *testing.T) {
	clock := &fakeClock{mono: at(time.Second)}
	env := testEnv(clock)
	env.Protocol = proto.NFS
	stale, _ := nfs.LookupStatus("NFS4ERR_STALE")
	d, err := NewErrors(ErrorParams{Rules: []ErrorRule{{Name: "stale", AcceptableCount: 1, Statuses: []uint32{stale}}},
		Window: time.Second, Cooldown: time.Minute}, env)
	if err != nil {
		t.Fatal(err)
	}
	e := failed(nfs.V4GetAttr, stale, 116, 500*ms)
	e.Protocol = proto.NFS
	out := d.Process([]event.Event{e}, nil)
	if len(out) != 1 {
		t.Fatalf("got %d anomalies, want 1", len(out))
	}
	if r := out[0].Reason; !strings.HasPrefix(r, `1 failed NFS RPCs matching error rule "stale"`) || !strings.HasSuffix(r, "most frequent NFS4ERR_STALE") {
		t.Errorf("reason %q", r)
	}
}

func TestErrorParamsValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    ErrorParams
		want string
	}{
		{"no rules", ErrorParams{Window: time.Second}, "no rules"},
		{"unnamed", ErrorParams{Window: time.Second, Rules: []ErrorRule{{AcceptableCount: 1}}}, "name is empty"},
		{"duplicate", ErrorParams{Window: time.Second, Rules: []ErrorRule{{Name: "a", AcceptableCount: 1}, {Name: "a", AcceptableCount: 1}}}, "duplicate name"},
		{"zero count", ErrorParams{Window: time.Second, Rules: []ErrorRule{{Name: "a"}}}, "acceptable_count"},
		{"bad command", ErrorParams{Window: time.Second, Rules: []ErrorRule{{Name: "a", AcceptableCount: 1, Commands: proto.CommandSet{}.With(25)}}}, "not SMB2 commands"},
		{"bad errno", ErrorParams{Window: time.Second, Rules: []ErrorRule{{Name: "a", AcceptableCount: 1, Errnos: []int32{-5}}}}, "errno values must be positive"},
		{"no window", ErrorParams{Rules: []ErrorRule{{Name: "a", AcceptableCount: 1}}}, "window must be positive"},
	} {
		if _, err := NewErrors(tc.p, Env{Protocol: proto.SMB}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}
