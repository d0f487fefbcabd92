package detector

import (
	"errors"
	"fmt"
	"time"

	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/anomalypdata"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/proto"
)

// Sets runs the detectors of every configured protocol over the same event batches;
// each Set looks only at its own protocol's events. It is what an agent or a
// connector drives, so that a new protocol needs a name table, not new wiring.
type Sets []*Set

// NewSets builds, for every protocol with a registered name table, the detectors the
// configuration gives it, in protocol order; a protocol without anomalies gets none.
// env returns the environment of one protocol (its Protocol field is set here).
func NewSets(c *config.Config, env func(proto.Protocol) Env) (Sets, error) {
	var sets Sets
	for t := range proto.Tables() {
		p := FromConfig(c, t)
		if p.Latency == nil && p.Errors == nil && p.Sockconn == nil {
			continue
		}
		e := env(t.Protocol)
		e.Protocol = t.Protocol
		s, err := New(p, e)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.Protocol, err)
		}
		sets = append(sets, s)
	}
	return sets, nil
}

// processChunk is how many events every detector sees before the next ones: about
// 36 KiB, which stays in the cache while the detectors read it in turn, where each
// detector would read a large batch from memory again.
const processChunk = 256

// Process runs a batch through every set and appends the anomalies emitted to out.
// It hands the sets processChunk events at a time: the anomalies come chunk by chunk,
// each chunk's in the order of Set.Process. A set is not handed a chunk without an
// event of its protocol: a host's events are mostly of one protocol, and each detector
// of every other set would read every event only to skip it.
func (ss Sets) Process(batch []event.Event, out []anomaly.Anomaly) []anomaly.Anomaly {
	for len(batch) > 0 {
		chunk := batch[:min(len(batch), processChunk)]
		present := protocolsIn(chunk)
		for _, s := range ss {
			if present&(1<<s.protocol) != 0 {
				out = s.Process(chunk, out)
			}
		}
		batch = batch[len(chunk):]
	}
	return out
}

// protocolsIn returns the protocols of a chunk's events as a set of bits, 1<<Protocol.
func protocolsIn(chunk []event.Event) uint64 {
	var present uint64
	for i := range chunk {
		present |= 1 << (chunk[i].Protocol & 63)
	}
	return present
}

// Poll runs every set's poll; an error of one set does not stop the others. Sets
// that read the same procfs root share one read of its TCP tables.
func (ss Sets) Poll(out []anomaly.Anomaly) ([]anomaly.Anomaly, error) {
	var errs []error
	var tables tcpTables
	for _, s := range ss {
		var err error
		if out, err = s.poll(out, &tables); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Protocol(), err))
		}
	}
	if len(errs) > 0 {
		return out, errors.Join(errs...)
	}
	return out, nil
}

// PollInterval is how often to call Poll: the shortest interval of any set that
// polls, 0 when none does.
func (ss Sets) PollInterval() time.Duration {
	var every time.Duration
	for _, s := range ss {
		if d := s.PollInterval(); d > 0 && (every == 0 || d < every) {
			every = d
		}
	}
	return every
}

// Keys lists every (protocol, type, rule) the sets can emit, so that an anomaly
// counter can export each series from zero.
func (ss Sets) Keys() []anomalypdata.Key {
	var keys []anomalypdata.Key
	for _, s := range ss {
		for _, r := range s.Rules() {
			keys = append(keys, anomalypdata.Key{Protocol: s.Protocol().String(), Type: r.Type, Rule: r.Rule})
		}
	}
	return keys
}
