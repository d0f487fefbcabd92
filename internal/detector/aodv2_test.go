package detector

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/smb"
)

// aodv2Latency models AODv2's latency handler: events are cut into tumbling batches of
// one window (starting at phase), and a batch fires when its requests at or over their
// command's threshold reach acceptable_count, or any of its requests takes >= 1 s. Only
// tracked commands reach the handler (its eBPF side drops the others). It returns the
// start times of the firing batches.
func aodv2Latency(p LatencyParams, events []event.Event, phase uint64) []uint64 {
	type batch struct {
		count int
		max   time.Duration
	}
	batches := map[uint64]*batch{}
	var starts []uint64
	w := uint64(p.Window)
	for i := range events {
		e := &events[i]
		if int(e.Command) >= smb.NumCommands || !p.Commands[e.Command].Tracked {
			continue
		}
		start := (e.EndNs-phase)/w*w + phase
		b := batches[start]
		if b == nil {
			b = &batch{}
			batches[start] = b
			starts = append(starts, start)
		}
		if e.Latency() >= p.Commands[e.Command].Threshold {
			b.count++
		}
		b.max = max(b.max, e.Latency())
	}
	var fired []uint64
	for _, s := range starts {
		if b := batches[s]; b.count >= p.AcceptableCount || b.max >= time.Second {
			fired = append(fired, s)
		}
	}
	return fired
}

// randomStream is a burst-y stream of slow requests over a few windows.
func randomStream(r *rand.Rand, n int) []event.Event {
	var evs []event.Event
	t := time.Duration(0)
	for range n {
		if r.IntN(10) == 0 {
			t += time.Duration(r.Int64N(int64(3 * time.Second))) // a quiet gap
		} else {
			t += time.Duration(r.Int64N(int64(80 * ms)))
		}
		lat := time.Duration(r.Int64N(int64(80 * ms)))
		if r.IntN(200) == 0 {
			lat = time.Second + time.Duration(r.Int64N(int64(time.Second)))
		}
		evs = append(evs, slow(uint16(r.IntN(smb.NumCommands)), t, lat))
	}
	return evs
}

// TestLatencyMatchesAODv2 checks on random streams that the sliding window fires in
// every tumbling batch where AODv2 fires, whatever the batches' phase, and fires only
// where some AODv2 batch phase would have fired: acceptable_count qualifying requests
// within less than one window, or a request over the ceiling.
func TestLatencyMatchesAODv2(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	p := LatencyParams{Commands: allCommands(20 * ms), AcceptableCount: 8, Window: time.Second, Ceiling: DefaultCeiling}
	p.Commands[smb.Write].Threshold = 50 * ms
	p.Commands[smb.Close].Tracked = false
	p.Commands[smb.Flush].Tracked = false
	checked := 0
	for round := range 200 {
		events := randomStream(r, 400)
		d, err := NewLatency(p, testEnv(&fakeClock{}))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := feed(t, d.Process, events)
		var firedAt []uint64
		for _, f := range got {
			e := events[f.at]
			firedAt = append(firedAt, e.EndNs)
			// Soundness: the count really was reached within less than one window.
			if f.rule == RuleCount {
				n := 0
				for _, o := range events[:f.at+1] {
					if p.Commands[o.Command].Tracked && o.Latency() >= p.Commands[o.Command].Threshold &&
						o.EndNs+uint64(p.Window) > e.EndNs {
						n++
					}
				}
				if n < p.AcceptableCount {
					t.Fatalf("round %d: fired at event %d with only %d qualifying events in the window before it", round, f.at, n)
				}
			} else if !p.Commands[e.Command].Tracked || e.Latency() < time.Second {
				t.Fatalf("round %d: ceiling fired at event %+v", round, e)
			}
		}
		// Completeness against AODv2 with several batch phases.
		for _, phase := range []uint64{0, uint64(250 * ms), uint64(500 * ms), uint64(999 * ms)} {
			for _, start := range aodv2Latency(p, events, phase) {
				checked++
				end := start + uint64(p.Window)
				if !slices.ContainsFunc(firedAt, func(t uint64) bool { return t >= start && t < end }) {
					t.Fatalf("round %d: AODv2 batch [%d, %d) fired, the detector did not fire in it (fired at %v)", round, start, end, firedAt)
				}
			}
		}
	}
	t.Logf("%d AODv2 detections checked", checked)
	if checked < 100 {
		t.Fatalf("only %d AODv2 detections in the random streams: the test is not exercising anything", checked)
	}
}
