package detector

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/procnet"
)

// Connection rules, as anomaly.Anomaly.Rule names them: what completed the count.
const (
	RuleDropped      = "dropped"       // an established connection to the server port disappeared between polls, or the kernel reported it lost
	RuleReconnect    = "reconnect"     // the kernel client reconnected a session
	RuleConnectError = "connect_error" // the kernel client failed to connect
)

// Sockconn is AODv2's connection anomaly (ss): it diffs the established TCP
// connections to the protocol's server port (445, 2049) between polls, and also counts the kernel's reconnect
// and failed-connect events, which catch a reconnect that completes between two polls.
// Where the kernel reports how each connection ended (NFS), it counts the lost ones
// instead of diffing the table: an NFS client closes a connection idle for five
// minutes, which the table shows as a connection gone.
// It is not safe for concurrent use.
type Sockconn struct {
	env   Env
	p     SockconnParams
	ends  bool             // a kernel connection end (KindLost, KindClosed) was seen
	prev  map[connKey]bool // established connections at the last poll; nil before the first
	w     window[loss]
	cd    cooldown
	stats Stats
}

type connKey struct{ local, remote netip.AddrPort }

// loss is one connection loss, from a poll or from a kernel event.
type loss struct {
	at     uint64 // CLOCK_MONOTONIC ns
	rule   string
	server string // host name (kernel events) or remote address (polls)
	detail string // the local end, for polls; what the kernel said, for its reports
	event  event.Event
	kernel bool // event is set
}

// NewSockconn builds a connection detector.
func NewSockconn(p SockconnParams, env Env) (*Sockconn, error) {
	env, t, err := env.checked()
	if err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p.AcceptableCount = orDefault(p.AcceptableCount, 1)
	p.Port = orDefault(p.Port, t.Port)
	p.MaxEvents = orDefault(p.MaxEvents, DefaultMaxEvents)
	return &Sockconn{
		env: env,
		p:   p,
		w:   newWindow[loss](p.Window, p.AcceptableCount, min(p.MaxEvents, p.AcceptableCount)),
		cd:  cooldown{period: uint64(p.Cooldown)},
	}, nil
}

// Interval is how often Poll should run: once per watch interval, as AODv2 did.
func (s *Sockconn) Interval() time.Duration { return s.p.Window }

// Stats returns the detector's counters.
func (s *Sockconn) Stats() Stats { return s.stats }

// Process counts the kernel's reconnect and failed-connect events in a batch and
// appends the anomalies emitted to out. Other events are ignored.
func (s *Sockconn) Process(batch []event.Event, out []anomaly.Anomaly) []anomaly.Anomaly {
	for i := range batch {
		e := &batch[i]
		if e.Protocol != s.env.Protocol {
			continue
		}
		var rule, detail string
		switch e.Kind {
		case event.KindReconnect:
			rule = RuleReconnect
		case event.KindConnectError:
			rule = RuleConnectError
		case event.KindLost:
			s.ends = true
			rule, detail = RuleDropped, "(the kernel reported it lost)"
		case event.KindClosed:
			s.ends = true
			s.stats.Events++
			continue
		default:
			continue
		}
		s.stats.Events++
		if e.EndNs == 0 {
			s.stats.Malformed++
			continue
		}
		out = s.add(loss{at: e.EndNs, rule: rule, server: e.ServerString(), detail: detail, event: *e, kernel: true}, out)
	}
	return out
}

// Poll reads the TCP tables, counts each established connection to the server port that
// disappeared since the previous poll, and appends the anomalies emitted to out. The
// first successful poll only records the connections. On error the previous set is
// kept, so a failed read never looks like lost connections. It does nothing while the
// kernel reports the connections' ends (Env.KernelEnds, or one was seen).
func (s *Sockconn) Poll(out []anomaly.Anomaly) ([]anomaly.Anomaly, error) {
	return s.poll(out, &tcpTables{})
}

// poll is Poll with the TCP tables read once for every detector of a poll round.
func (s *Sockconn) poll(out []anomaly.Anomaly, tables *tcpTables) ([]anomaly.Anomaly, error) {
	if s.ends || (s.env.KernelEnds != nil && s.env.KernelEnds()) {
		s.prev = nil // the kernel reports the ends; a later diff starts afresh
		return out, nil
	}
	now := s.env.Clock.Monotonic()
	cur, err := s.established(tables)
	if err != nil {
		return out, err
	}
	if s.prev != nil {
		var gone []connKey
		for k := range s.prev {
			if !cur[k] {
				gone = append(gone, k)
			}
		}
		slices.SortFunc(gone, func(a, b connKey) int {
			return cmp.Or(a.remote.Compare(b.remote), a.local.Compare(b.local))
		})
		for _, k := range gone {
			s.stats.Events++
			out = s.add(loss{at: now, rule: RuleDropped, server: k.remote.String(), detail: "from " + k.local.String()}, out)
		}
	}
	s.prev = cur
	return out, nil
}

// established returns the connections to the server port established now, from the
// round's TCP tables.
func (s *Sockconn) established(tables *tcpTables) (map[connKey]bool, error) {
	rows, err := tables.read(s.env.Proc)
	if err != nil {
		return nil, err
	}
	cur := make(map[connKey]bool, len(s.prev))
	for _, r := range rows {
		if r.State == procnet.StateEstablished && r.Remote.Port() == s.p.Port {
			cur[connKey{r.Local, r.Remote}] = true
		}
	}
	return cur, nil
}

func (s *Sockconn) add(l loss, out []anomaly.Anomaly) []anomaly.Anomaly {
	if s.w.late(l.at) {
		s.stats.Late++
		return out
	}
	s.stats.Counted++
	reached := s.w.add(l.at, &l)
	s.w.settle() // l is this call's own
	if !reached {
		return out
	}
	emit, suppressed := s.cd.admit(l.at)
	if !emit {
		s.stats.Suppressed++
		s.w.reset()
		return out
	}
	s.stats.Emitted++
	n, first := s.w.count()
	losses := s.w.recent(nil, func(l *loss) uint64 { return l.at })
	var events []event.Event
	var servers tally
	parts := make([]string, 0, len(losses))
	for _, x := range losses {
		if x.kernel {
			events = append(events, x.event)
		}
		if x.server != "" {
			servers.add(x.server)
		}
		parts = append(parts, strings.Join(slices.DeleteFunc([]string{x.rule, x.server, x.detail}, isEmpty), " "))
	}
	a := s.env.newAnomaly(anomaly.TypeSockconn, l.rule, first, events)
	a.Window = s.p.Window
	a.Count = n
	a.Limit = s.p.AcceptableCount
	a.Suppressed = suppressed
	a.TopServers = servers.top()
	a.Reason = fmt.Sprintf("%d %s connection losses within %v reached acceptable_count %d: %s",
		n, strings.ToUpper(s.env.Protocol.String()), s.p.Window, s.p.AcceptableCount, strings.Join(parts, "; "))
	s.w.reset()
	return append(out, a)
}

func isEmpty(s string) bool { return s == "" }

// tcpTables is one read of a procfs root's TCP tables, shared by the connection
// detectors of one poll round (SMB's and NFS's): every read walks the kernel's whole
// established-connection hash table, once per address family, and that table's size
// follows the host's memory (262,144 buckets with 24 GiB), not its connections.
type tcpTables struct {
	proc fs.FS // the root rows were read from; nil before the first read
	rows []procnet.Conn
	err  error
}

// read returns the rows of proc's net/tcp and net/tcp6, read once per round for a
// root the round already read. A missing table (no IPv6) is empty; both missing is
// an error.
func (t *tcpTables) read(proc fs.FS) ([]procnet.Conn, error) {
	if t.proc != nil && sameRoot(t.proc, proc) {
		return t.rows, t.err
	}
	t.proc, t.rows, t.err = proc, t.rows[:0], nil
	var errs []error
	read := 0
	for _, name := range []string{"net/tcp", "net/tcp6"} {
		data, err := fs.ReadFile(proc, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil {
			t.rows, err = procnet.Parse(data, t.rows)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("sockconn: %s: %w", name, err))
			continue
		}
		read++
	}
	if len(errs) > 0 {
		t.err = errors.Join(errs...)
	} else if read == 0 {
		t.err = errors.New("sockconn: neither net/tcp nor net/tcp6 exists under the proc root")
	}
	return t.rows, t.err
}

// sameRoot reports whether a and b are the same procfs root: equal values of a
// comparable type (os.DirFS of one path, one pointer). Roots of other types (a map,
// as fstest.MapFS) are never taken for the same.
func sameRoot(a, b fs.FS) bool {
	ta := reflect.TypeOf(a)
	return ta == reflect.TypeOf(b) && ta.Comparable() && a == b
}
