package cifsproc

import (
	"errors"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DebugDataPath is where the cifs module publishes DebugData.
const DebugDataPath = "/proc/fs/cifs/DebugData"

// maxRemembered bounds the trees ShareNames remembers. Trees that left DebugData are
// kept (events and histogram entries can outlive an unmount) until there are more.
const maxRemembered = 4096

// Name is what a (session id, tree id) pair resolves to.
type Name struct {
	Server string // server host ("" when even the session is unknown)
	Share  string // share name ("" when the tree is unknown)
}

type treeKey struct {
	session uint64
	tree    uint32
}

type treeEntry struct {
	name       Name
	generation uint64
}

// ShareNames resolves (session id, tree id) pairs to share and server names from
// DebugData. It re-reads DebugData when asked about a pair it does not know: at once
// the first time (a reconnect brings a new session and new trees, and the counts
// collected for them are attributed to whatever the pair resolves to then), and after
// that at most once per minimum interval, so a stream of events for an unlisted tree
// costs one read per interval and no more. It is safe for concurrent use.
type ShareNames struct {
	read        func() ([]byte, error)
	minInterval time.Duration
	now         func() time.Time

	mu       sync.RWMutex
	trees    map[treeKey]treeEntry
	sessions map[uint64]string

	refreshMu   sync.Mutex // held while reading and parsing
	lastRefresh time.Time
	generation  uint64
	// missed holds the pairs a read made after their first lookup did not list; only
	// those wait for the interval. Guarded by refreshMu.
	missed map[treeKey]bool

	// listed holds the sessions of the last read that parsed cleanly; nil before one.
	listed map[uint64]bool

	readErrors, parseErrors atomic.Uint64
	lastErr                 atomic.Pointer[error]
}

// NewShareNames returns a resolver reading DebugData with read (nil: the real
// /proc/fs/cifs/DebugData), re-reading at most once per minInterval.
func NewShareNames(read func() ([]byte, error), minInterval time.Duration) *ShareNames {
	if read == nil {
		read = func() ([]byte, error) { return os.ReadFile(DebugDataPath) }
	}
	return &ShareNames{
		read: read, minInterval: minInterval, now: time.Now,
		trees: map[treeKey]treeEntry{}, sessions: map[uint64]string{}, missed: map[treeKey]bool{},
	}
}

// Lookup resolves a pair, re-reading DebugData first when the pair is unknown and the
// interval allows. ok reports that the tree was found; when only the session is
// known, Name carries the server alone.
func (s *ShareNames) Lookup(sessionID uint64, treeID uint32) (name Name, ok bool) {
	if name, ok = s.lookup(sessionID, treeID); ok {
		return name, true
	}
	if sessionID == 0 || (treeID == 0 && name.Server != "") {
		// Requests outside any session (NEGOTIATE) or any tree (SESSION_SETUP, ECHO,
		// LOGOFF) are never listed: re-reading cannot name them better.
		return name, false
	}
	return s.maybeRefresh(treeKey{sessionID, treeID}, name)
}

func (s *ShareNames) lookup(sessionID uint64, treeID uint32) (Name, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if e, ok := s.trees[treeKey{sessionID, treeID}]; ok {
		return e.name, true
	}
	return Name{Server: s.sessions[sessionID]}, false
}

// maybeRefresh re-reads DebugData for the unknown pair k, unless k already missed a
// read and the last one was less than the minimum interval ago, and looks k up again.
// name is what k resolves to without a read. It waits for a read in progress rather
// than skipping it: that read may be older than k, and what a metrics collection
// resolves now is where its counts stay.
func (s *ShareNames) maybeRefresh(k treeKey, name Name) (Name, bool) {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	if name, ok := s.lookup(k.session, k.tree); ok {
		return name, true // the read we waited for listed it
	}
	now := s.now()
	if s.missed[k] && now.Sub(s.lastRefresh) < s.minInterval {
		return name, false
	}
	s.lastRefresh = now
	_ = s.refreshLocked()
	name, ok := s.lookup(k.session, k.tree)
	if !ok {
		if len(s.missed) >= maxRemembered {
			clear(s.missed)
		}
		s.missed[k] = true
	}
	return name, ok
}

// Refresh re-reads DebugData now, whatever the interval. A cifs module that is not
// loaded is no error: there is simply nothing to name.
func (s *ShareNames) Refresh() error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	s.lastRefresh = s.now()
	return s.refreshLocked()
}

func (s *ShareNames) refreshLocked() error {
	data, err := s.read()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		s.readErrors.Add(1)
		s.lastErr.Store(&err)
		return err
	}
	dd, perr := ParseDebugData(data)
	if perr != nil {
		s.parseErrors.Add(1)
		s.lastErr.Store(&perr)
	}
	s.merge(dd, perr == nil)
	return perr
}

func (s *ShareNames) merge(dd *DebugData, complete bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.generation++
	listed := make(map[uint64]bool, len(dd.Sessions))
	for _, ses := range dd.Sessions {
		s.sessions[ses.SessionID] = ses.Server
		listed[ses.SessionID] = true
	}
	if complete {
		s.listed = listed
	}
	for _, sh := range dd.Shares {
		s.trees[treeKey{sh.SessionID, sh.TreeID}] = treeEntry{Name{Server: sh.Server, Share: sh.Share}, s.generation}
	}
	if len(s.trees) > maxRemembered {
		for k, e := range s.trees {
			if e.generation != s.generation {
				delete(s.trees, k)
			}
		}
	}
	if len(s.sessions) > maxRemembered {
		for id := range s.sessions {
			if !listed[id] {
				delete(s.sessions, id)
			}
		}
	}
}

// ListedSessions re-reads DebugData and returns the sessions it lists. ok is false
// when DebugData could not be read or did not parse cleanly: then nothing can be
// concluded about sessions that are not listed. The map must not be modified.
func (s *ShareNames) ListedSessions() (ids map[uint64]bool, ok bool) {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	s.lastRefresh = s.now()
	s.mu.Lock()
	s.listed = nil
	s.mu.Unlock()
	if err := s.refreshLocked(); err != nil {
		return nil, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.listed, s.listed != nil
}

// Errors returns how many DebugData reads failed (other than the file being absent)
// and how many reads did not parse cleanly, with the last such error.
func (s *ShareNames) Errors() (readErrors, parseErrors uint64, last error) {
	if p := s.lastErr.Load(); p != nil {
		last = *p
	}
	return s.readErrors.Load(), s.parseErrors.Load(), last
}
