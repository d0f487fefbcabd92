package detector

import (
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/anomalypdata"
	"github.com/linuxdiag/aod/internal/cifsproc"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/fixtures"
	"github.com/linuxdiag/aod/internal/proto"
)

// procSwitch lets a test change the proc root between polls.
type procSwitch struct{ fs.FS }

// testdata/proc/smb-conns holds real TCP tables with two IPv4 (local ports 37558, 37568)
// and one IPv6 connection to port 445; in proc/smb-reconnect the one from 37558 is gone
// (TIME_WAIT) and a new one from 37576 is up: a reconnect as a poll sees it.
func newSockconn(t *testing.T, p SockconnParams, clock *fakeClock) (*Sockconn, *procSwitch) {
	t.Helper()
	proc := &procSwitch{os.DirFS(fixtures.Path("proc/smb-conns"))}
	env := testEnv(clock)
	env.Proc = proc
	d, err := NewSockconn(p, env)
	if err != nil {
		t.Fatal(err)
	}
	return d, proc
}

func poll(t *testing.T, d *Sockconn) []anomaly.Anomaly {
	t.Helper()
	out, err := d.Poll(nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSockconnPollDiff(t *testing.T) {
	clock := &fakeClock{mono: at(0)}
	d, proc := newSockconn(t, SockconnParams{Window: time.Second, Cooldown: time.Minute}, clock)
	if out := poll(t, d); len(out) != 0 {
		t.Fatalf("first poll is a baseline, got %v", out)
	}
	clock.mono = at(time.Second)
	if out := poll(t, d); len(out) != 0 {
		t.Fatalf("unchanged tables fired %v", out)
	}
	proc.FS = os.DirFS(fixtures.Path("proc/smb-reconnect"))
	clock.mono = at(2 * time.Second)
	out := poll(t, d)
	if len(out) != 1 {
		t.Fatalf("got %d anomalies after a dropped connection, want 1", len(out))
	}
	a := out[0]
	if a.Type != anomaly.TypeSockconn || a.Rule != RuleDropped || a.Count != 1 || a.Limit != 1 ||
		!equal(a.TopServers, []anomaly.Tally{{Value: "127.0.0.1:445", Count: 1}}) || len(a.Events) != 0 ||
		a.FirstEvent != epoch.Add(time.Duration(at(2*time.Second))) {
		t.Errorf("anomaly %+v", a)
	}
	if !strings.Contains(a.Reason, "dropped 127.0.0.1:445 from 127.0.0.1:37558") {
		t.Errorf("reason %q does not name the dropped connection", a.Reason)
	}
	// The new connection from 37576 is not a loss; going back drops 37576 (and only it)
	// but within the cooldown.
	proc.FS = os.DirFS(fixtures.Path("proc/smb-conns"))
	clock.mono = at(3 * time.Second)
	if out := poll(t, d); len(out) != 0 {
		t.Fatalf("drop during cooldown emitted %v", out)
	}
	if s := d.Stats(); s.Counted != 2 || s.Suppressed != 1 {
		t.Errorf("stats %+v, want 2 losses counted, 1 suppressed", s)
	}
}

func TestSockconnFailedReadKeepsState(t *testing.T) {
	clock := &fakeClock{mono: at(0)}
	d, proc := newSockconn(t, SockconnParams{Window: time.Second}, clock)
	poll(t, d)
	proc.FS = fstest.MapFS{"net/tcp": {Data: []byte("  sl  local_address rem_address st\n  0: garbage\n")}}
	if _, err := d.Poll(nil); err == nil || !strings.Contains(err.Error(), "net/tcp: line 2") {
		t.Fatalf("malformed table: got error %v", err)
	}
	proc.FS = fstest.MapFS{}
	if _, err := d.Poll(nil); err == nil || !strings.Contains(err.Error(), "neither net/tcp nor net/tcp6") {
		t.Fatalf("missing tables: got error %v", err)
	}
	// Only IPv4 left (no IPv6 table): the IPv6 connection counts as dropped, nothing else.
	data, err := os.ReadFile(fixtures.Path("proc/smb-conns/net/tcp"))
	if err != nil {
		t.Fatal(err)
	}
	proc.FS = fstest.MapFS{"net/tcp": {Data: data}}
	out := poll(t, d)
	if len(out) != 1 || !equal(out[0].TopServers, []anomaly.Tally{{Value: "[::1]:445", Count: 1}}) {
		t.Fatalf("got %+v, want one drop of the IPv6 connection", out)
	}
}

func TestSockconnKernelEvents(t *testing.T) {
	clock := &fakeClock{}
	d, _ := newSockconn(t, SockconnParams{Window: time.Second, AcceptableCount: 2}, clock)
	ev := func(k event.Kind, end time.Duration, server string) event.Event {
		e := event.Event{Protocol: proto.SMB, Kind: k, EndNs: at(end), ConnID: 3}
		copy(e.Server[:], server)
		return e
	}
	events := []event.Event{
		ev(event.KindConnect, 0, "fs1"), // a new connection (a mount) is not a loss
		ev(event.KindReconnect, 100*ms, "fs1"),
		ev(event.KindConnectError, 200*ms, "fs2"),
		ev(event.KindReconnect, 2*time.Second, "fs1"),
		slow(5, 3*time.Second, time.Hour),
	}
	got, all := feed(t, d.Process, events)
	if want := []fired{{2, RuleConnectError, 2, 2, 0}}; !slices.Equal(got, want) {
		t.Fatalf("fired %+v, want %+v", got, want)
	}
	a := all[0]
	if !equal(a.TopServers, []anomaly.Tally{{Value: "fs1", Count: 1}, {Value: "fs2", Count: 1}}) || !equal(a.Events, events[1:3]) {
		t.Errorf("anomaly servers %v events %v", a.TopServers, a.Events)
	}
}

// Where the kernel reports how connections end (NFS), a lost one is a loss at once, an
// idle one the client closed is not, and the TCP-table diff, which cannot tell the two
// apart, stops: from the first such event, or from the start when Env.KernelEnds says
// the kernel reports them.
func TestSockconnKernelEnds(t *testing.T) {
	ev := func(k event.Kind, end time.Duration) event.Event {
		e := event.Event{Protocol: proto.SMB, Kind: k, EndNs: at(end), ConnID: 7}
		copy(e.Server[:], "fs1")
		return e
	}
	clock := &fakeClock{mono: at(0)}
	d, proc := newSockconn(t, SockconnParams{Window: time.Second}, clock)
	poll(t, d)
	if got, _ := feed(t, d.Process, []event.Event{ev(event.KindClosed, 100*ms)}); len(got) != 0 {
		t.Fatalf("an idle close fired %+v", got)
	}
	proc.FS = os.DirFS(fixtures.Path("proc/smb-reconnect")) // a connection gone from the table
	clock.mono = at(2 * time.Second)
	if out := poll(t, d); len(out) != 0 {
		t.Fatalf("the table diff ran although the kernel reports the ends: %+v", out)
	}
	got, all := feed(t, d.Process, []event.Event{ev(event.KindLost, 3*time.Second)})
	if want := []fired{{0, RuleDropped, 1, 1, 0}}; !slices.Equal(got, want) {
		t.Fatalf("a lost connection fired %+v, want %+v", got, want)
	}
	if a := all[0]; !equal(a.TopServers, []anomaly.Tally{{Value: "fs1", Count: 1}}) ||
		!strings.Contains(a.Reason, "dropped fs1 (the kernel reported it lost)") || len(a.Events) != 1 {
		t.Errorf("servers %v, reason %q, events %v", a.TopServers, a.Reason, a.Events)
	}

	// Told by the environment before any end.
	env := testEnv(&fakeClock{mono: at(0)})
	env.Proc = &procSwitch{os.DirFS(fixtures.Path("proc/smb-conns"))}
	env.KernelEnds = func() bool { return true }
	d, err := NewSockconn(SockconnParams{Window: time.Second}, env)
	if err != nil {
		t.Fatal(err)
	}
	poll(t, d)
	env.Proc.(*procSwitch).FS = os.DirFS(fixtures.Path("proc/smb-reconnect"))
	if out := poll(t, d); len(out) != 0 {
		t.Fatalf("the table diff ran although Env.KernelEnds is true: %+v", out)
	}
}

func TestSetRoutesEvents(t *testing.T) {
	clock := &fakeClock{}
	env := testEnv(clock)
	env.Proc = os.DirFS(fixtures.Path("proc/smb-conns"))
	s, err := New(Params{
		Latency:  &LatencyParams{Commands: allCommands(20 * ms), AcceptableCount: 1, Window: time.Second},
		Errors:   &ErrorParams{Rules: []ErrorRule{{Name: "any", AcceptableCount: 1}}, Window: time.Second},
		Sockconn: &SockconnParams{Window: 2 * time.Second},
	}, env)
	if err != nil {
		t.Fatal(err)
	}
	reconnect := event.Event{Protocol: proto.SMB, Kind: event.KindReconnect, EndNs: at(0)}
	// The same events of another protocol pass by every detector of the SMB set.
	var others []event.Event
	for _, e := range []event.Event{slow(8, 0, 30*ms), failed(8, status("STATUS_IO_TIMEOUT"), 110, 0), reconnect} {
		e.Protocol = proto.NFS
		others = append(others, e)
	}
	if out := s.Process(others, nil); len(out) != 0 {
		t.Errorf("NFS events fired %d SMB anomalies: %+v", len(out), out[0])
	}
	out := s.Process([]event.Event{slow(8, 0, 30*ms), failed(8, status("STATUS_IO_TIMEOUT"), 110, 0), reconnect}, nil)
	var types []string
	for _, a := range out {
		types = append(types, a.Type+"/"+a.Rule)
	}
	// The failed request took 1ms: under the latency threshold.
	if want := []string{"latency/count", "error/any", "sockconn/reconnect"}; !slices.Equal(types, want) {
		t.Errorf("got %v, want %v", types, want)
	}
	wantRules := []RuleID{{"latency", "count"}, {"error", "any"}, {"sockconn", "dropped"}, {"sockconn", "reconnect"}, {"sockconn", "connect_error"}}
	if !slices.Equal(s.Rules(), wantRules) {
		t.Errorf("rules %v, want %v (no ceiling rule: the ceiling is off)", s.Rules(), wantRules)
	}
	if s.PollInterval() != 2*time.Second {
		t.Errorf("poll interval %v", s.PollInterval())
	}
	if _, err := s.Poll(nil); err != nil {
		t.Error(err)
	}
	if _, err := New(Params{Errors: &ErrorParams{}}, env); err == nil {
		t.Error("invalid error params accepted")
	}
	empty, err := New(Params{}, env)
	if err != nil || empty.PollInterval() != 0 {
		t.Errorf("empty set: %v, interval %v", err, empty.PollInterval())
	}
	if out, err := empty.Poll(nil); err != nil || len(out) != 0 {
		t.Errorf("empty set poll: %v %v", out, err)
	}
}

func TestSystemClockAgreesWithTheHost(t *testing.T) {
	c := NewSystemClock()
	now, mono := c.Now(), c.Monotonic()
	if d := c.Time(mono).Sub(now); d < -time.Second || d > time.Second {
		t.Errorf("the monotonic reading taken now converts to %v away from now", d)
	}
	if d := c.Time(mono - uint64(time.Hour)).Sub(c.Time(mono)); d != -time.Hour {
		t.Errorf("an hour earlier converts to %v earlier", -d)
	}
}

func TestSharesFrom(t *testing.T) {
	resolve := SharesFrom(func(session uint64, tree uint32) (cifsproc.Name, bool) {
		switch {
		case session == 1 && tree == 2:
			return cifsproc.Name{Server: "srv", Share: "data"}, true
		case session == 1:
			return cifsproc.Name{Server: "srv"}, true
		}
		return cifsproc.Name{}, false
	})
	for _, tc := range []struct {
		session uint64
		tree    uint32
		want    string
	}{{1, 2, `\\srv\data`}, {1, 9, `\\srv`}, {5, 2, ""}} {
		if got := resolve(tc.session, tc.tree); got != tc.want {
			t.Errorf("(%d, %d): got %q, want %q", tc.session, tc.tree, got, tc.want)
		}
	}
}

// NewSets builds a set for each protocol the configuration gives anomalies to, and
// the sets together process, poll and declare their rules as the agent drives them.
func TestSetsFromConfig(t *testing.T) {
	c, _, err := config.Parse("sets.yaml", []byte(`
watch_interval_sec: 2
anomalies:
  smb:
    error: {tool: smbiosnoop, acceptable_count: 1, track_errors: [STATUS_IO_TIMEOUT]}
    sockconn: {tool: ss}
`))
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{}
	sets, err := NewSets(c, func(p proto.Protocol) Env {
		env := testEnv(clock)
		env.Protocol = proto.IO // NewSets sets each set's own protocol
		env.Proc = os.DirFS(fixtures.Path("proc/smb-conns"))
		return env
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sets) != 1 || sets[0].Protocol() != proto.SMB || sets[0].Latency != nil || sets[0].Errors == nil {
		t.Fatalf("sets %+v", sets)
	}
	out := sets.Process([]event.Event{failed(8, status("STATUS_IO_TIMEOUT"), 110, 0)}, nil)
	if len(out) != 1 || out[0].Protocol != "smb" || out[0].Rule != config.LegacyRuleName {
		t.Errorf("anomalies %+v", out)
	}
	if sets.PollInterval() != 2*time.Second {
		t.Errorf("poll interval %v", sets.PollInterval())
	}
	keys := sets.Keys()
	if len(keys) != 4 || keys[0] != (anomalypdata.Key{Protocol: "smb", Type: "error", Rule: config.LegacyRuleName}) {
		t.Errorf("keys %v", keys)
	}
	empty, err := NewSets(config.Defaults(), func(proto.Protocol) Env { return Env{} })
	if err != nil || len(empty) != 0 || empty.PollInterval() != 0 {
		t.Errorf("no anomalies: sets %v, %v", empty, err)
	}
}

// countingProc counts the files opened under a procfs root.
type countingProc struct {
	fs.FS
	opens int
}

func (c *countingProc) Open(name string) (fs.File, error) {
	c.opens++
	return c.FS.Open(name)
}

// TestSetsPollReadTheTCPTablesOnce: SMB's and NFS's connection detectors polled in
// one round read one procfs root's tables once between them, and each still diffs
// its own server port; sets on different roots read each their own.
func TestSetsPollReadTheTCPTablesOnce(t *testing.T) {
	c, _, err := config.Parse("sets.yaml", []byte(`
watch_interval_sec: 2
anomalies:
  smb:
    sockconn: {tool: ss}
  nfs:
    sockconn: {tool: ss}
`))
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{}
	shared := &countingProc{FS: os.DirFS(fixtures.Path("proc/smb-conns"))}
	sets, err := NewSets(c, func(proto.Protocol) Env {
		env := testEnv(clock)
		env.Proc = shared
		return env
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sets) != 2 {
		t.Fatalf("%d sets, want SMB's and NFS's", len(sets))
	}
	if _, err := sets.Poll(nil); err != nil {
		t.Fatal(err)
	}
	if shared.opens != 2 {
		t.Fatalf("one poll round opened %d files, want net/tcp and net/tcp6 once", shared.opens)
	}
	// A connection to port 445 gone: SMB's detector sees it, NFS's (2049) does not.
	shared.FS = os.DirFS(fixtures.Path("proc/smb-reconnect"))
	clock.mono = at(time.Second)
	out, err := sets.Poll(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Protocol != "smb" || out[0].Rule != RuleDropped || shared.opens != 4 {
		t.Fatalf("second round: %d opens, anomalies %+v; want 4 opens and SMB's dropped connection", shared.opens, out)
	}

	var roots []*countingProc
	apart, err := NewSets(c, func(proto.Protocol) Env {
		env := testEnv(clock)
		roots = append(roots, &countingProc{FS: os.DirFS(fixtures.Path("proc/smb-conns"))})
		env.Proc = roots[len(roots)-1]
		return env
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := apart.Poll(nil); err != nil {
		t.Fatal(err)
	}
	if len(roots) != 2 || roots[0].opens != 2 || roots[1].opens != 2 {
		t.Fatalf("sets on two roots: opens %d and %d, want 2 each", roots[0].opens, roots[1].opens)
	}
}
