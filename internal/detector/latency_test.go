package detector

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/podattr"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/smb"
)

// fired is one emitted anomaly, identified by the index of the event that triggered it.
type fired struct {
	at         int
	rule       string
	count      int
	limit      int
	suppressed int
}

// feed offers events one at a time, so each anomaly is attributed to the exact event
// that emitted it.
func feed(t *testing.T, process func([]event.Event, []anomaly.Anomaly) []anomaly.Anomaly, events []event.Event) ([]fired, []anomaly.Anomaly) {
	t.Helper()
	var got []fired
	var all []anomaly.Anomaly
	for i := range events {
		out := process(events[i:i+1], nil)
		for _, a := range out {
			got = append(got, fired{i, a.Rule, a.Count, a.Limit, a.Suppressed})
		}
		all = append(all, out...)
	}
	return got, all
}

// burst returns n slow requests of cmd, every gap, the first ending at start.
func burst(n int, cmd uint16, start, gap, lat time.Duration) []event.Event {
	var evs []event.Event
	for i := range n {
		evs = append(evs, slow(cmd, start+time.Duration(i)*gap, lat))
	}
	return evs
}

func TestLatencySemantics(t *testing.T) {
	base := LatencyParams{Commands: allCommands(20 * ms), AcceptableCount: 3, Window: time.Second, Ceiling: DefaultCeiling}
	trackonly := base
	trackonly.Commands = [proto.MaxCommands]CommandThreshold{}
	trackonly.Commands[smb.Write] = CommandThreshold{Tracked: true, Threshold: 50 * ms}
	excluded := base
	excluded.Commands[smb.Read].Tracked = false
	cooled := base
	cooled.Cooldown = 10 * time.Second
	noCeiling := base
	noCeiling.Ceiling = 0
	highThreshold := base
	highThreshold.Commands[smb.Flush].Threshold = 5 * time.Second

	for _, tc := range []struct {
		name   string
		p      LatencyParams
		events []event.Event
		want   []fired
	}{
		{"one below acceptable_count is quiet", base, burst(2, smb.Read, 0, ms, 30*ms), nil},
		{"exactly acceptable_count fires at the last one", base, burst(3, smb.Read, 0, ms, 30*ms),
			[]fired{{2, RuleCount, 3, 3, 0}}},
		{"latency equal to threshold counts", base, burst(3, smb.Read, 0, ms, 20*ms),
			[]fired{{2, RuleCount, 3, 3, 0}}},
		{"latency just under threshold does not", base, burst(3, smb.Read, 0, ms, 20*ms-1), nil},
		{"per-command threshold", trackonly, append(burst(3, smb.Write, 0, ms, 49*ms), burst(3, smb.Write, 10*ms, ms, 50*ms)...),
			[]fired{{5, RuleCount, 3, 3, 0}}},
		{"trackonly ignores an absent command, ceiling too", trackonly,
			append(burst(5, smb.Read, 0, ms, 100*ms), slow(smb.Read, 10*ms, 3*time.Second)), nil},
		{"excluded command neither counts nor hits the ceiling", excluded,
			append(burst(5, smb.Read, 0, ms, 100*ms), slow(smb.Read, 10*ms, 3*time.Second)), nil},
		{"excluded command does not break others' count", excluded,
			[]event.Event{slow(smb.Write, 0, 30*ms), slow(smb.Read, ms, 30*ms), slow(smb.Create, 2*ms, 30*ms), slow(smb.Close, 3*ms, 30*ms)},
			[]fired{{3, RuleCount, 3, 3, 0}}},
		{"spread over exactly one window is two windows", base,
			[]event.Event{slow(smb.Read, 0, 30*ms), slow(smb.Read, 500*ms, 30*ms), slow(smb.Read, time.Second, 30*ms)}, nil},
		{"spread just inside one window fires", base,
			[]event.Event{slow(smb.Read, 0, 30*ms), slow(smb.Read, 500*ms, 30*ms), slow(smb.Read, time.Second-1, 30*ms)},
			[]fired{{2, RuleCount, 3, 3, 0}}},
		{"the window slides: old events expire", base,
			[]event.Event{slow(smb.Read, 0, 30*ms), slow(smb.Read, 900*ms, 30*ms), slow(smb.Read, 1200*ms, 30*ms), slow(smb.Read, 1300*ms, 30*ms)},
			[]fired{{3, RuleCount, 3, 3, 0}}},
		{"ceiling without count", base, []event.Event{slow(smb.Read, 0, time.Second)},
			[]fired{{0, RuleCeiling, 1, 0, 0}}},
		{"just under the ceiling is only counted", base, []event.Event{slow(smb.Read, 0, time.Second-1)}, nil},
		{"ceiling applies under a command's higher threshold", highThreshold,
			[]event.Event{slow(smb.Flush, 0, 2*time.Second)}, []fired{{0, RuleCeiling, 1, 0, 0}}},
		{"ceiling can be disabled", noCeiling, []event.Event{slow(smb.Read, 0, 10*time.Second)}, nil},
		{"count and ceiling on one event report the count", base,
			[]event.Event{slow(smb.Read, 0, 30*ms), slow(smb.Read, ms, 30*ms), slow(smb.Read, 2*ms, 2*time.Second)},
			[]fired{{2, RuleCount, 3, 3, 0}}},
		{"a repeat needs a fresh count", base, burst(5, smb.Read, 0, ms, 30*ms), []fired{{2, RuleCount, 3, 3, 0}}},
		{"every fresh count fires without a cooldown", base, burst(9, smb.Read, 0, ms, 30*ms),
			[]fired{{2, RuleCount, 3, 3, 0}, {5, RuleCount, 3, 3, 0}, {8, RuleCount, 3, 3, 0}}},
		{"cooldown suppresses repeats and expires", cooled,
			slices.Concat(burst(9, smb.Read, 0, ms, 30*ms), burst(3, smb.Read, 10*time.Second-1, ms, 30*ms), burst(3, smb.Read, 11*time.Second, ms, 30*ms)),
			[]fired{{2, RuleCount, 3, 3, 0}, {14, RuleCount, 3, 3, 3}}},
		{"failed requests count by their latency", base,
			[]event.Event{failed(smb.Read, 0xC00000B5, 5, 0), slowFailure(ms, 30*ms), slowFailure(2*ms, 30*ms), slowFailure(3*ms, 30*ms)},
			[]fired{{3, RuleCount, 3, 3, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewLatency(tc.p, testEnv(&fakeClock{}))
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

// slowFailure is a READ that failed with STATUS_IO_TIMEOUT after lat.
func slowFailure(end, lat time.Duration) event.Event {
	e := failed(smb.Read, status("STATUS_IO_TIMEOUT"), 110, end)
	e.StartNs = e.EndNs - uint64(lat)
	return e
}

func TestLatencyDropsBadAndLateEvents(t *testing.T) {
	d, err := NewLatency(LatencyParams{Commands: allCommands(20 * ms), AcceptableCount: 2, Window: time.Second}, testEnv(&fakeClock{}))
	if err != nil {
		t.Fatal(err)
	}
	noStart := slow(smb.Read, 0, time.Hour) // StartNs 0: the kernel lost the request's start
	noStart.StartNs = 0
	backwards := slow(smb.Read, 0, 0)
	backwards.StartNs = backwards.EndNs + 1
	unknown := slow(99, 0, time.Hour)
	events := []event.Event{noStart, backwards, unknown,
		slow(smb.Read, 5*time.Second, 30*ms),
		slow(smb.Read, 3*time.Second, 30*ms), // arrived after a newer event, a whole window older
		slow(smb.Read, 4900*ms, 30*ms),       // slightly out of order: still counts
	}
	got, _ := feed(t, d.Process, events)
	if want := []fired{{5, RuleCount, 2, 2, 0}}; !slices.Equal(got, want) {
		t.Errorf("fired %+v, want %+v", got, want)
	}
	want := Stats{Events: 5, Counted: 2, Late: 1, Malformed: 2, Emitted: 1}
	if s := d.Stats(); s != want {
		t.Errorf("stats %+v, want %+v", s, want)
	}
}

func TestLatencyAnomalyContents(t *testing.T) {
	clock := &fakeClock{}
	p := LatencyParams{Commands: allCommands(20 * ms), AcceptableCount: 4, Window: 2 * time.Second, MaxEvents: 3, Cooldown: time.Minute, Ceiling: DefaultCeiling}
	p.Commands[smb.Write].Threshold = 50 * ms
	env := testEnv(clock)
	pod := podattr.Workload{Cgroup: "/kubepods/x", PodUID: "u", Namespace: "shop", PodName: "web", ContainerName: "app"}
	lookups := 0
	env.Workload = func(id uint64) (podattr.Workload, bool) {
		lookups++
		return pod, id == 0x77
	}
	d, err := NewLatency(p, env)
	if err != nil {
		t.Fatal(err)
	}
	other := slow(smb.Read, 300*ms, 80*ms)
	other.SessionID, other.TreeID, other.Tgid = 9, 3, 77
	copy(other.Comm[:], "cp\x00")
	fromPod := func(e event.Event) event.Event { e.CgroupID = 0x77; return e }
	events := []event.Event{slow(smb.Write, 100*ms, 60*ms), fromPod(slow(smb.Write, 200*ms, 70*ms)), other, fromPod(slow(smb.Write, 400*ms, 55*ms))}
	clock.mono = at(450 * ms)
	out := d.Process(events, nil)
	if len(out) != 1 {
		t.Fatalf("got %d anomalies, want 1", len(out))
	}
	a := out[0]
	check := func(what string, got, want any) {
		t.Helper()
		if !equal(got, want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("Protocol", a.Protocol, "smb")
	check("Type", a.Type, anomaly.TypeLatency)
	check("Rule", a.Rule, RuleCount)
	check("Count", a.Count, 4)
	check("Limit", a.Limit, 4)
	check("Window", a.Window, 2*time.Second)
	check("Threshold", a.Threshold, 20*ms) // the lowest of READ's 20ms and WRITE's 50ms
	check("FirstEvent", a.FirstEvent, epoch.Add(time.Duration(at(100*ms))))
	check("DetectedAt", a.DetectedAt, epoch.Add(time.Duration(at(450*ms))))
	check("TraceID", a.TraceID, [16]byte{15: 1})
	check("SpanID", a.SpanID, [8]byte{7: 1})
	// MaxEvents 3: the three most recent triggering events, oldest first.
	check("Events", a.Events, events[1:])
	check("EventTimeOffset", a.EventTimeOffset, epoch.UnixNano()) // wall = epoch + monotonic
	check("EventTime", a.EventTime(a.Events[0].EndNs).UnixNano(), epoch.Add(time.Duration(a.Events[0].EndNs)).UnixNano())
	check("MaxLatency", a.MaxLatency, 80*ms)
	check("TopCommands", a.TopCommands, []anomaly.Tally{{Value: "SMB2_WRITE", Count: 2}, {Value: "SMB2_READ", Count: 1}})
	check("TopShares", a.TopShares, []anomaly.Tally{{Value: `\\srv\data`, Count: 2}, {Value: "session 0x9 tree 0x3", Count: 1}})
	check("TopProcesses", a.TopProcesses, []anomaly.Tally{{Value: "fio[42]", Count: 2}, {Value: "cp[77]", Count: 1}})
	check("TopStatuses", len(a.TopStatuses), 0)
	// The pod of the two requests from its cgroup, looked up once; the others have none.
	check("TopWorkloads", a.TopWorkloads, []anomaly.Tally{{Value: "shop/web/app", Count: 2}})
	check("Workloads", a.Workloads, map[uint64]podattr.Workload{0x77: pod})
	check("lookups", lookups, 1)
	for _, s := range []string{"4 SMB requests", "SMB2_READ >= 20ms", "SMB2_WRITE >= 50ms", "acceptable_count 4", "slowest 80ms"} {
		if !strings.Contains(a.Reason, s) {
			t.Errorf("Reason %q lacks %q", a.Reason, s)
		}
	}

	// A ceiling hit during the cooldown is suppressed, and reported with the next one.
	if out := d.Process([]event.Event{slow(smb.Read, time.Second, 2*time.Second)}, nil); len(out) != 0 {
		t.Fatalf("ceiling hit during cooldown emitted %v", out)
	}
	out = d.Process([]event.Event{slow(smb.Read, time.Minute+time.Second, 1500*ms)}, nil)
	if len(out) != 1 || out[0].Rule != RuleCeiling || out[0].Suppressed != 1 || out[0].Threshold != time.Second ||
		out[0].MaxLatency != 1500*ms || out[0].Limit != 0 || len(out[0].Events) != 1 {
		t.Fatalf("after cooldown got %+v, want one ceiling anomaly reporting 1 suppressed", out)
	}
	if !strings.Contains(out[0].Reason, "SMB2_READ request took 1.5s, at or over the 1s ceiling") {
		t.Errorf("ceiling reason %q", out[0].Reason)
	}
	if want := epoch.Add(time.Duration(at(time.Minute + time.Second))); out[0].FirstEvent != want {
		t.Errorf("ceiling anomaly's first event at %v, want %v", out[0].FirstEvent, want)
	}

	// A ceiling hit by a request under its command's own threshold: the request is the
	// only triggering event.
	p.Commands[smb.Flush].Threshold = 5 * time.Second
	d, err = NewLatency(p, testEnv(clock))
	if err != nil {
		t.Fatal(err)
	}
	flush := slow(smb.Flush, 3*time.Second, 2*time.Second)
	out = d.Process([]event.Event{flush}, nil)
	if len(out) != 1 || out[0].Count != 1 || out[0].FirstEvent != epoch.Add(time.Duration(flush.EndNs)) ||
		!equal(out[0].Events, []event.Event{flush}) {
		t.Errorf("ceiling hit under threshold: %+v", out)
	}
}

func TestLatencyParamsValidation(t *testing.T) {
	good := LatencyParams{Commands: allCommands(20 * ms), AcceptableCount: 1, Window: time.Second}
	for _, tc := range []struct {
		name string
		edit func(*LatencyParams)
		want string
	}{
		{"zero count", func(p *LatencyParams) { p.AcceptableCount = 0 }, "acceptable_count must be between 1"},
		{"huge count", func(p *LatencyParams) { p.AcceptableCount = 1 << 30 }, "acceptable_count must be between 1"},
		{"no window", func(p *LatencyParams) { p.Window = 0 }, "window must be positive"},
		{"negative cooldown", func(p *LatencyParams) { p.Cooldown = -1 }, "cooldown must not be negative"},
		{"negative ceiling", func(p *LatencyParams) { p.Ceiling = -1 }, "ceiling must not be negative"},
		{"negative threshold", func(p *LatencyParams) { p.Commands[3].Threshold = -1 }, "command 3: threshold must not be negative"},
		{"nothing tracked", func(p *LatencyParams) { p.Commands = [proto.MaxCommands]CommandThreshold{} }, "no command is tracked"},
	} {
		p := good
		tc.edit(&p)
		if _, err := NewLatency(p, Env{Protocol: proto.SMB}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := NewLatency(good, Env{Protocol: proto.SMB}); err != nil {
		t.Errorf("valid params rejected: %v", err)
	}
}

// The window keeps copies of the events that count, not the batch they came in: the
// ring reader reuses its batches once Process has returned.
func TestLatencyKeepsEventsOfReusedBatches(t *testing.T) {
	lat, err := NewLatency(LatencyParams{Commands: allCommands(20 * ms), AcceptableCount: 3, Window: time.Second, Cooldown: time.Hour}, testEnv(&fakeClock{}))
	if err != nil {
		t.Fatal(err)
	}
	batch := []event.Event{slow(smb.Read, 1*ms, 30*ms), slow(smb.Read, 2*ms, 40*ms)}
	if out := lat.Process(batch, nil); len(out) != 0 {
		t.Fatalf("fired early: %v", out)
	}
	// The reader refills the batch: a fast WRITE, then the READ that completes the count.
	batch[0], batch[1] = slow(smb.Write, 3*ms, 1*ms), slow(smb.Read, 4*ms, 50*ms)
	out := lat.Process(batch, nil)
	if len(out) != 1 {
		t.Fatalf("got %d anomalies, want 1", len(out))
	}
	want := []event.Event{slow(smb.Read, 1*ms, 30*ms), slow(smb.Read, 2*ms, 40*ms), slow(smb.Read, 4*ms, 50*ms)}
	if !equal(out[0].Events, want) {
		t.Errorf("events %+v\nwant %+v", out[0].Events, want)
	}
}
