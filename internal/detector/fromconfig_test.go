package detector

import (
	"slices"
	"testing"
	"time"

	"github.com/linuxdiag/aod/configs"
	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/fixtures"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/smb"
)

// load builds the detectors of a configuration, as the agent does.
func load(t *testing.T, c *config.Config) (*Set, Params) {
	t.Helper()
	p := FromConfig(c, smb.Table)
	s, err := New(p, testEnv(&fakeClock{}))
	if err != nil {
		t.Fatal(err)
	}
	return s, p
}

func loadFile(t *testing.T, path string) (*Set, Params) {
	t.Helper()
	c, _, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return load(t, c)
}

func loadYAML(t *testing.T, yaml string) (*Set, Params) {
	t.Helper()
	c, _, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return load(t, c)
}

// modelMatch is AODv2's reading of an error rule: a failure of one of its commands
// (any command when it names none) whose status or errno it names, or any such
// failure when it names neither.
func modelMatch(r ErrorRule, e *event.Event) bool {
	if !r.Commands.IsEmpty() && !r.Commands.Has(e.Command) {
		return false
	}
	if len(r.Statuses) == 0 && len(r.Errnos) == 0 {
		return true
	}
	return slices.Contains(r.Statuses, e.Status) || slices.Contains(r.Errnos, -e.Rc)
}

// aodv2Errors models AODv2's error anomaly on tumbling batches of one window: a batch
// fires when the failures matching the rule reach its acceptable_count.
func aodv2Errors(r ErrorRule, window time.Duration, events []event.Event) bool {
	counts := map[uint64]int{}
	for i := range events {
		e := &events[i]
		if e.Kind == event.KindError && modelMatch(r, e) {
			b := e.EndNs / uint64(window)
			counts[b]++
			if counts[b] >= r.AcceptableCount {
				return true
			}
		}
	}
	return false
}

func firedRules(out []anomaly.Anomaly) []string {
	var rules []string
	for _, a := range out {
		rules = append(rules, a.Type+"/"+a.Rule)
	}
	return rules
}

// spread returns n events made by mk, every gap, starting at start.
func spread(n int, start, gap time.Duration, mk func(end time.Duration) event.Event) []event.Event {
	var evs []event.Event
	for i := range n {
		evs = append(evs, mk(start+time.Duration(i)*gap))
	}
	return evs
}

// The 2026 fixture: smb latency (mode all, acceptable_count 10, default 20 ms,
// SMB2_WRITE 50 ms) and sockconn, over a 60 s window.
func TestFixture2026(t *testing.T) {
	_, p := loadFile(t, fixtures.Path("aodv2/aodv2-2026-config.yaml"))
	if p.Latency == nil || p.Sockconn == nil || p.Errors != nil {
		t.Fatalf("detectors %+v: want latency and sockconn", p)
	}
	if p.Latency.Window != time.Minute || p.Latency.AcceptableCount != 10 ||
		p.Latency.Commands[smb.Write] != (CommandThreshold{true, 50 * ms}) || p.Latency.Commands[smb.Read] != (CommandThreshold{true, 20 * ms}) {
		t.Fatalf("latency params %+v", p.Latency)
	}
	write := func(lat time.Duration) func(time.Duration) event.Event {
		return func(end time.Duration) event.Event { return slow(smb.Write, end, lat) }
	}
	read := func(lat time.Duration) func(time.Duration) event.Event {
		return func(end time.Duration) event.Event { return slow(smb.Read, end, lat) }
	}
	for _, tc := range []struct {
		name   string
		events []event.Event
		want   []string
	}{
		{"10 writes at their 50 ms threshold within a minute", spread(10, 0, 5*time.Second, write(50*ms)), []string{"latency/count"}},
		{"10 writes under their own threshold, over the default", spread(10, 0, time.Second, write(49*ms)), nil},
		{"9 reads over 20 ms and a write under 50 ms", append(spread(9, 0, time.Second, read(25*ms)), slow(smb.Write, 10*time.Second, 30*ms)), nil},
		{"10 reads at exactly 20 ms", spread(10, 0, time.Second, read(20*ms)), []string{"latency/count"}},
		{"one read of a second", []event.Event{slow(smb.Read, 0, time.Second)}, []string{"latency/ceiling"}},
		{"10 slow reads a minute apart", spread(10, 0, time.Minute, read(500*ms)), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := loadFile(t, fixtures.Path("aodv2/aodv2-2026-config.yaml"))
			got := firedRules(s.Process(tc.events, nil))
			if !slices.Equal(got, tc.want) {
				t.Errorf("fired %v, want %v", got, tc.want)
			}
			if aod := len(aodv2Latency(*p.Latency, tc.events, 0)) > 0; aod != (len(got) > 0) {
				t.Errorf("AODv2 fires: %v; the detector fired %v", aod, got)
			}
		})
	}
	// sockconn: a connection gone between two polls.
	s, _ := loadFile(t, fixtures.Path("aodv2/aodv2-2026-config.yaml"))
	proc := &procSwitch{}
	s.Sockconn.env.Proc = proc
	for i, dir := range []string{"proc/smb-conns", "proc/smb-conns", "proc/smb-reconnect"} {
		proc.FS = dirFS(fixtures.Path(dir))
		out, err := s.Poll(nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := i == 2; (len(out) == 1) != want || len(out) > 1 {
			t.Errorf("poll %d fired %v, want a dropped-connection anomaly only on the last", i, firedRules(out))
		}
	}
}

// The 2025 fixture: an error anomaly on errno names (trackonly EACCES, EAGAIN, EIO,
// acceptable_count 10) and the same latency anomaly, over a 1 s window.
func TestFixture2025(t *testing.T) {
	_, p := loadFile(t, fixtures.Path("aodv2/aodv2-2025-config.yaml"))
	if p.Errors == nil || len(p.Errors.Rules) != 1 || p.Latency == nil || p.Latency.Window != time.Second {
		t.Fatalf("params %+v", p)
	}
	rule := p.Errors.Rules[0]
	if rule.Name != config.LegacyRuleName || rule.AcceptableCount != 10 || !slices.Equal(slices.Sorted(slices.Values(rule.Errnos)), []int32{eIO, 11, eACCES}) {
		t.Fatalf("error rule %+v", rule)
	}
	fail := func(st uint32, errno int32) func(time.Duration) event.Event {
		return func(end time.Duration) event.Event { return failed(smb.Create, st, errno, end) }
	}
	denied, notFound := status("STATUS_ACCESS_DENIED"), status("STATUS_OBJECT_NAME_NOT_FOUND")
	for _, tc := range []struct {
		name   string
		events []event.Event
		want   []string
	}{
		{"10 EIO failures within a second", spread(10, 0, 90*ms, fail(status("STATUS_IO_TIMEOUT"), eIO)), []string{"error/default"}},
		{"10 ENOENT failures", spread(10, 0, 10*ms, fail(notFound, eNOENT)), nil},
		{"9 EACCES and one ENOENT", append(spread(9, 0, 10*ms, fail(denied, eACCES)), failed(smb.Create, notFound, eNOENT, 100*ms)), nil},
		{"10 EAGAIN over two seconds", spread(10, 0, 200*ms, fail(status("STATUS_NETWORK_BUSY"), 11)), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := loadFile(t, fixtures.Path("aodv2/aodv2-2025-config.yaml"))
			got := firedRules(s.Process(tc.events, nil))
			if !slices.Equal(got, tc.want) {
				t.Errorf("fired %v, want %v", got, tc.want)
			}
			if aod := aodv2Errors(rule, time.Second, tc.events); aod != (len(got) > 0) {
				t.Errorf("AODv2 fires: %v; the detector fired %v", aod, got)
			}
		})
	}
}

// The shipped default configuration must stay quiet on the failures of healthy
// traffic and fire at once on severe ones.
func TestDefaultRulesOnHealthyAndSevereTraffic(t *testing.T) {
	c, _, err := config.Parse(configs.DefaultName, configs.Default)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := load(t, c)
	// Ten minutes of a busy healthy client: 1000 reads at EOF and 100 directory
	// listing ends per second, and a failed lookup every 100 ms, fed a second at a time.
	batch := make([]event.Event, 0, 1200)
	for sec := range 600 {
		batch = batch[:0]
		for i := range 1000 {
			end := time.Duration(sec)*time.Second + time.Duration(i)*ms
			batch = append(batch, failed(smb.Read, status("STATUS_END_OF_FILE"), 61, end))
			if i%10 == 0 {
				batch = append(batch, failed(smb.QueryDirectory, status("STATUS_NO_MORE_FILES"), 61, end))
			}
			if i%100 == 0 {
				batch = append(batch, failed(smb.Create, status("STATUS_OBJECT_NAME_NOT_FOUND"), eNOENT, end))
			}
		}
		if out := s.Process(batch, nil); len(out) != 0 {
			t.Fatalf("healthy traffic fired %v at second %d: %s", firedRules(out), sec, out[0].Reason)
		}
	}
	for _, name := range []string{"STATUS_IO_TIMEOUT", "STATUS_NETWORK_NAME_DELETED", "STATUS_USER_SESSION_DELETED", "STATUS_CONNECTION_DISCONNECTED"} {
		s, _ := load(t, c)
		out := s.Process([]event.Event{failed(smb.Write, status(name), eIO, time.Second)}, nil)
		if !slices.Equal(firedRules(out), []string{"error/connection"}) {
			t.Errorf("one %s fired %v, want error/connection", name, firedRules(out))
		}
	}
	// A storm of failed lookups after the healthy stretch does fire.
	storm := spread(1000, 11*time.Minute, ms, func(end time.Duration) event.Event {
		return failed(smb.Create, status("STATUS_OBJECT_NAME_NOT_FOUND"), eNOENT, end)
	})
	if out := s.Process(storm, nil); !slices.Equal(firedRules(out), []string{"error/lookup_storm"}) {
		t.Errorf("lookup storm fired %v", firedRules(out))
	}
}

// The legacy single-rule form and the same filters as one named rule detect the same
// failures; only the rule's name differs.
func TestLegacyAndRulesForms(t *testing.T) {
	const head = "watch_interval_sec: 1\nanomalies:\n  smb:\n    error:\n      tool: smbiosnoop\n"
	_, legacy := loadYAML(t, head+`      acceptable_count: 3
      track_commands: [SMB2_READ, SMB2_WRITE]
      track_errors: [STATUS_IO_TIMEOUT, EACCES]
`)
	_, rules := loadYAML(t, head+`      rules:
        - name: reads_and_writes
          acceptable_count: 3
          track_commands: [SMB2_READ, SMB2_WRITE]
          track_errors: [STATUS_IO_TIMEOUT, EACCES]
`)
	lr, rr := legacy.Errors.Rules, rules.Errors.Rules
	if len(lr) != 1 || len(rr) != 1 || lr[0].Name != config.LegacyRuleName || rr[0].Name != "reads_and_writes" {
		t.Fatalf("rules %+v and %+v", lr, rr)
	}
	rr[0].Name = lr[0].Name
	if !equal(lr, rr) {
		t.Fatalf("legacy %+v differs from the named rule %+v", lr, rr)
	}
	want := ErrorRule{Name: config.LegacyRuleName, AcceptableCount: 3, Commands: proto.CommandSet{}.With(smb.Read).With(smb.Write),
		Statuses: []uint32{status("STATUS_IO_TIMEOUT")}, Errnos: []int32{eACCES}}
	if !equal(lr[0], want) {
		t.Errorf("legacy rule %+v, want %+v", lr[0], want)
	}
}
