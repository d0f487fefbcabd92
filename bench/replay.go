//go:build linux

package main

import (
	"encoding/binary"
	"slices"
	"time"
	"unsafe"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/configs"
	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/detector"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/smb"
)

// replayEvents is how many events each batch size is timed over, per repeat.
const (
	replayEvents  = 1 << 23
	replayRepeats = 3
	replayStream  = bpf.DefaultRingBytes / replayStride // the default ring's worth of records
)

// replayStride is the ring's stride: each record after its 8-byte header, padded to 8.
const replayStride = (8 + bpf.EventSize + 7) &^ 7

// replayStreamOf is what the ring delivers under a persistent fault: slow requests of
// the busy commands on ten shares, one in ten a failure, 20 µs apart. The records lie
// back to back in one buffer, each after its 8-byte header, as in the ring's memory;
// records allocated one by one, scattered over the heap, made decoding wait on memory
// the ring never makes it wait on.
func replayStreamOf(n int) [][]byte {
	buf := make([]byte, n*replayStride)
	statuses := []uint32{0xc0000011, 0xc000000f, statusObjectNameNotFound, 0xc00000b5, 0xc0000022}
	cmds := []uint16{smb.Read, smb.Write, smb.Create, smb.Close, smb.QueryInfo}
	raw := make([][]byte, n)
	base := uint64(time.Hour)
	for i := range raw {
		ev := event.Event{Protocol: proto.SMB, Kind: event.KindSlow, Command: cmds[i%len(cmds)],
			SessionID: benchSession, TreeID: uint32(i%steadyShares + 1), MessageID: uint64(i), Pid: 4242, Tgid: 4242}
		copy(ev.Comm[:], "bench")
		ev.EndNs = base + uint64(i)*uint64(20*time.Microsecond)
		ev.StartNs = ev.EndNs - uint64(time.Duration(110+i%40)*time.Millisecond)
		if i%10 == 0 {
			ev.Kind, ev.Status, ev.Rc = event.KindError, statuses[i/10%len(statuses)], -5
			ev.StartNs = ev.EndNs - uint64(5*time.Millisecond)
		}
		raw[i] = bpf.EncodeEvent(buf[i*replayStride+8:], &ev)
	}
	return raw
}

// replay decodes the stream's records into batches of size and runs each batch
// through the default configuration's detectors, as the agent's receiver and
// detectors do; it returns the best of replayRepeats rates, in events per second.
// Each time the stream has been read through, its records' times move on by the
// stream's span (not timed: the ring's records come with their own times), so that
// the detectors see time advance as under a persistent fault.
func replay(size int) (float64, error) {
	cfg, _, err := config.Parse(configs.DefaultName, configs.Default)
	if err != nil {
		return 0, err
	}
	det, err := detector.NewSets(cfg, func(proto.Protocol) detector.Env {
		return detector.Env{Clock: detector.NewSystemClock()}
	})
	if err != nil {
		return 0, err
	}
	stream := replayStreamOf(replayStream)
	span := uint64(replayStream) * uint64(20*time.Microsecond)
	batch := make([]event.Event, size)
	var out []anomaly.Anomaly
	var rates []float64
	pos := 0
	for range replayRepeats {
		var elapsed time.Duration
		start := time.Now()
		for done := 0; done < replayEvents; done += size {
			for i := range batch {
				if pos == len(stream) {
					elapsed += time.Since(start)
					moveOn(stream, span)
					pos, start = 0, time.Now()
				}
				if err := bpf.DecodeEvent(stream[pos], &batch[i]); err != nil {
					return 0, err
				}
				pos++
			}
			out = det.Process(batch, out[:0])
		}
		elapsed += time.Since(start)
		rates = append(rates, float64(replayEvents)/elapsed.Seconds())
	}
	return slices.Max(rates), nil
}

// moveOn adds span to every record's start and end times, in place. event.Event
// lies as the record does (bpf.DecodeEvent copies one into the other), so its fields'
// offsets are the record's.
func moveOn(stream [][]byte, span uint64) {
	var ev event.Event
	start, end := unsafe.Offsetof(ev.StartNs), unsafe.Offsetof(ev.EndNs)
	le := binary.LittleEndian
	for _, raw := range stream {
		le.PutUint64(raw[start:], le.Uint64(raw[start:])+span)
		le.PutUint64(raw[end:], le.Uint64(raw[end:])+span)
	}
}
