package detector

import (
	"errors"
	"time"

	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/proto"
)

// Params configures the detectors of one protocol; a nil member disables that
// detector.
type Params struct {
	Latency  *LatencyParams
	Errors   *ErrorParams
	Sockconn *SockconnParams
}

// Set runs the configured detectors over the same event batches. This is what an agent
// drives: Process for every batch the receiver decodes, and Poll every PollInterval.
// It is not safe for concurrent use.
type Set struct {
	protocol proto.Protocol
	Latency  *Latency  // nil when disabled
	Errors   *Errors   // nil when disabled
	Sockconn *Sockconn // nil when disabled
}

// New builds the detectors p enables, all sharing env.
func New(p Params, env Env) (*Set, error) {
	s := Set{protocol: env.Protocol}
	var errs []error
	var err error
	if p.Latency != nil {
		s.Latency, err = NewLatency(*p.Latency, env)
		errs = append(errs, err)
	}
	if p.Errors != nil {
		s.Errors, err = NewErrors(*p.Errors, env)
		errs = append(errs, err)
	}
	if p.Sockconn != nil {
		s.Sockconn, err = NewSockconn(*p.Sockconn, env)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &s, nil
}

// Protocol is whose events the set watches (Env.Protocol).
func (s *Set) Protocol() proto.Protocol { return s.protocol }

// Process runs a batch through every detector and appends the anomalies emitted to
// out, latency first, then errors, then connections.
func (s *Set) Process(batch []event.Event, out []anomaly.Anomaly) []anomaly.Anomaly {
	if s.Latency != nil {
		out = s.Latency.Process(batch, out)
	}
	if s.Errors != nil {
		out = s.Errors.Process(batch, out)
	}
	if s.Sockconn != nil {
		out = s.Sockconn.Process(batch, out)
	}
	return out
}

// Poll runs the connection detector's poll, if it is enabled.
func (s *Set) Poll(out []anomaly.Anomaly) ([]anomaly.Anomaly, error) {
	return s.poll(out, &tcpTables{})
}

// poll is Poll with the TCP tables read once for every set of a poll round.
func (s *Set) poll(out []anomaly.Anomaly, tables *tcpTables) ([]anomaly.Anomaly, error) {
	if s.Sockconn == nil {
		return out, nil
	}
	return s.Sockconn.poll(out, tables)
}

// PollInterval is how often to call Poll; 0 when no detector polls.
func (s *Set) PollInterval() time.Duration {
	if s.Sockconn == nil {
		return 0
	}
	return s.Sockconn.Interval()
}

// RuleID names one kind of anomaly a Set can emit.
type RuleID struct{ Type, Rule string }

// Rules lists every type and rule the set can emit, so that an anomaly counter can
// export each series from zero.
func (s *Set) Rules() []RuleID {
	var ids []RuleID
	if s.Latency != nil {
		ids = append(ids, RuleID{anomaly.TypeLatency, RuleCount})
		if s.Latency.p.Ceiling > 0 {
			ids = append(ids, RuleID{anomaly.TypeLatency, RuleCeiling})
		}
	}
	if s.Errors != nil {
		for _, r := range s.Errors.p.Rules {
			ids = append(ids, RuleID{anomaly.TypeError, r.Name})
		}
	}
	if s.Sockconn != nil {
		for _, r := range []string{RuleDropped, RuleReconnect, RuleConnectError} {
			ids = append(ids, RuleID{anomaly.TypeSockconn, r})
		}
	}
	return ids
}
