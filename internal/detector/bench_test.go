package detector

import (
	"testing"
	"time"

	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/smb"
)

// benchStream is what the ring buffer delivers under a persistent fault: mostly slow
// requests of every command, one in ten a failure, 20 µs apart.
func benchStream(n int) []event.Event {
	statuses := []uint32{status("STATUS_END_OF_FILE"), status("STATUS_NO_MORE_FILES"),
		status("STATUS_OBJECT_NAME_NOT_FOUND"), status("STATUS_IO_TIMEOUT"), status("STATUS_ACCESS_DENIED")}
	evs := make([]event.Event, n)
	for i := range evs {
		end := time.Duration(i) * 20 * time.Microsecond
		cmd := uint16(i % smb.NumCommands)
		if i%10 == 0 {
			evs[i] = failed(cmd, statuses[i/10%len(statuses)], 5, end)
		} else {
			evs[i] = slow(cmd, end, time.Duration(10+i%40)*ms)
		}
	}
	return evs
}

// BenchmarkLatencyAndErrors drives the latency detector and a five-rule error detector
// over the same batches, as the agent does. Anomalies fire and are suppressed by the
// cooldown throughout, so the steady state includes detections.
func BenchmarkLatencyAndErrors(b *testing.B) {
	env := testEnv(&fakeClock{})
	p := LatencyParams{Commands: allCommands(20 * ms), AcceptableCount: 10, Window: time.Second, Cooldown: time.Hour}
	p.Commands[smb.Write].Threshold = 50 * ms
	lat, err := NewLatency(p, env)
	if err != nil {
		b.Fatal(err)
	}
	rules := []ErrorRule{
		{Name: "severe", AcceptableCount: 1, Statuses: []uint32{status("STATUS_IO_TIMEOUT"), status("STATUS_NETWORK_NAME_DELETED"),
			status("STATUS_USER_SESSION_DELETED"), status("STATUS_CONNECTION_DISCONNECTED")}},
		{Name: "access", AcceptableCount: 10, Statuses: []uint32{status("STATUS_ACCESS_DENIED"), status("STATUS_LOGON_FAILURE")}},
		{Name: "not_found", AcceptableCount: 200, Statuses: []uint32{status("STATUS_OBJECT_NAME_NOT_FOUND"), status("STATUS_OBJECT_PATH_NOT_FOUND")}},
		{Name: "writes", AcceptableCount: 20, Commands: proto.CommandSet{}.With(smb.Write).With(smb.Flush)},
		{Name: "eio", AcceptableCount: 50, Errnos: []int32{5}},
	}
	errs, err := NewErrors(ErrorParams{Rules: rules, Window: time.Second, Cooldown: time.Hour}, env)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 256
	stream := benchStream(1 << 16)
	span := stream[len(stream)-1].EndNs - stream[0].EndNs + uint64(20*time.Microsecond)
	out := make([]anomaly.Anomaly, 0, 16)
	b.ReportAllocs()
	b.ResetTimer()
	pos := 0
	for done := 0; done < b.N; done += batch {
		if pos == len(stream) {
			b.StopTimer()
			for i := range stream { // the next stretch of time
				stream[i].StartNs += span
				stream[i].EndNs += span
			}
			pos = 0
			b.StartTimer()
		}
		evs := stream[pos : pos+batch]
		pos += batch
		out = lat.Process(evs, out[:0])
		out = errs.Process(evs, out)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mevents/s")
	if lat.Stats().Suppressed == 0 || errs.Stats().Suppressed == 0 {
		b.Fatalf("no detections in the benchmark: latency %+v errors %+v", lat.Stats(), errs.Stats())
	}
}
