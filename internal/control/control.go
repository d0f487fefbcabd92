// Package control is the local socket through which aod's CLI talks to a running
// agent: `aod snapshot` asks for an on-demand bundle, `aod top` watches the slow
// and failed requests the agent sees and `aod upload status` reads the upload queue. The socket is a Unix socket, mode 0600, so only
// root (the agent's user) can use it.
package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/proto"
	"github.com/linuxdiag/aod/internal/upload"
)

// DefaultPath is where the agent listens unless configured otherwise.
const DefaultPath = "/run/aod/aod.sock"

// Operations a client can ask for.
const (
	OpSnapshot     = "snapshot"
	OpWatch        = "watch"
	OpUploadStatus = "upload_status"
)

// Request is the single JSON line a client sends after connecting.
type Request struct {
	Op string `json:"op"`
}

// Reply answers OpSnapshot, and opens an OpWatch stream (then Records follow).
type Reply struct {
	Bundle string         `json:"bundle,omitempty"`
	Upload *upload.Status `json:"upload,omitempty"` // OpUploadStatus
	// Hooks opens an OpWatch stream: the agent's probe hooks, attached or not (and why),
	// for `aod top`'s first line.
	Hooks []bpf.HookStatus `json:"hooks,omitempty"`
	Error string           `json:"error,omitempty"`
}

// ErrUploadOff answers OpUploadStatus when the agent uploads nothing.
var ErrUploadOff = errors.New("upload is off in this agent's configuration (upload.enabled)")

// Record is one slow or failed request (or connection event) as `aod top` shows it.
type Record struct {
	Time     time.Time `json:"time"`
	Protocol string    `json:"protocol"` // "smb", "nfs"
	Kind     string    `json:"kind"`
	Process  string    `json:"process,omitempty"`
	PID      uint32    `json:"pid,omitempty"`
	Command  string    `json:"command,omitempty"`
	Latency  float64   `json:"latency_seconds"`
	Status   string    `json:"status,omitempty"`
	Server   string    `json:"server,omitempty"`
	Share    string    `json:"share,omitempty"`
	Dropped  uint64    `json:"dropped,omitempty"` // records this watcher missed before this one
}

// Where names the share or export the record's request went to as its protocol's users
// write it (\\server\share, server:/export), or only the server when that is all known.
func (r *Record) Where() string {
	if r.Share == "" {
		return r.Server
	}
	p, ok := proto.ParseProtocol(r.Protocol)
	if !ok {
		return r.Server + " " + r.Share
	}
	return string(proto.TableOf(p).AppendShare(nil, r.Server, r.Share))
}

// NewRecord describes event e for `aod top`: end is e's completion in wall-clock time,
// server and share name its share (empty when unknown).
func NewRecord(e *event.Event, end time.Time, server, share string) Record {
	r := Record{Time: end, Protocol: e.Protocol.String(), Kind: e.Kind.String(), Process: e.CommString(), PID: e.Tgid, Status: e.Failure()}
	switch e.Kind {
	case event.KindSlow, event.KindError:
		r.Command = e.Cmd().String()
		r.Latency = e.Latency().Seconds()
		r.Server, r.Share = server, share
	default:
		r.Server = e.ServerString()
	}
	return r
}

// SnapshotFunc writes an on-demand bundle and returns its path.
type SnapshotFunc func(ctx context.Context) (string, error)

// watcherQueue bounds what a slow `aod top` can hold back: beyond it records are
// dropped for that watcher (and counted to it), never for the agent.
const watcherQueue = 1024

type watcher struct {
	ch      chan Record
	dropped atomic.Uint64
}

// Server serves the control socket.
type Server struct {
	ln       net.Listener
	snapshot SnapshotFunc
	log      *slog.Logger
	upload   atomic.Pointer[func() upload.Status]
	hooks    atomic.Pointer[func() []bpf.HookStatus]

	mu       sync.Mutex
	watchers map[*watcher]struct{}
	nwatch   atomic.Int32
	wg       sync.WaitGroup
	closed   chan struct{}
}

// Listen creates the socket at path (replacing a stale one) and serves it until Close.
func Listen(path string, snapshot SnapshotFunc, log *slog.Logger) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if c, err := net.Dial("unix", path); err == nil {
		who := ErrAgentRunning.Error()
		if pid := peerPID(c); pid > 0 {
			who = fmt.Sprintf("another aod agent (pid %d) is running", pid)
		}
		c.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, runningError{who})
	}
	// Nothing answered: what is there may be the socket of an agent that died, which
	// is removed. Anything else is someone's file and stays.
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("control socket %s: something other than a socket is there; remove it or choose another path", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control socket: remove the stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	s := &Server{ln: ln, snapshot: snapshot, log: log, watchers: map[*watcher]struct{}{}, closed: make(chan struct{})}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// SetUploadStatus makes OpUploadStatus answer with fn's queue (nil: upload off).
func (s *Server) SetUploadStatus(fn func() upload.Status) {
	if fn == nil {
		s.upload.Store(nil)
		return
	}
	s.upload.Store(&fn)
}

// SetHooks makes each OpWatch stream open with fn's probe hooks.
func (s *Server) SetHooks(fn func() []bpf.HookStatus) { s.hooks.Store(&fn) }

// Watching reports whether any client watches, so the agent builds Records only then.
func (s *Server) Watching() bool { return s.nwatch.Load() > 0 }

// Publish hands r to every watcher without ever blocking the caller.
func (s *Server) Publish(r Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for w := range s.watchers {
		select {
		case w.ch <- r:
		default:
			w.dropped.Add(1)
		}
	}
}

// Close stops listening, ends every watch stream and waits for the handlers.
func (s *Server) Close() error {
	close(s.closed)
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			s.serve(c)
		}()
	}
}

func (s *Server) serve(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	// One request line of bounded size: ReadSlice fails on anything longer.
	line, err := bufio.NewReaderSize(c, 4096).ReadSlice('\n')
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	var req Request
	enc := json.NewEncoder(c)
	if err := json.Unmarshal(line, &req); err != nil {
		_ = enc.Encode(Reply{Error: "bad request: " + err.Error()})
		return
	}
	switch req.Op {
	case OpSnapshot:
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-s.closed:
				cancel()
			case <-ctx.Done():
			}
		}()
		path, err := s.snapshot(ctx)
		if err != nil {
			_ = enc.Encode(Reply{Error: err.Error()})
			return
		}
		_ = enc.Encode(Reply{Bundle: path})
	case OpWatch:
		s.watch(c, enc)
	case OpUploadStatus:
		fn := s.upload.Load()
		if fn == nil {
			_ = enc.Encode(Reply{Error: ErrUploadOff.Error()})
			return
		}
		st := (*fn)()
		_ = enc.Encode(Reply{Upload: &st})
	default:
		_ = enc.Encode(Reply{Error: fmt.Sprintf("unknown op %q (want %q, %q or %q)", req.Op, OpSnapshot, OpWatch, OpUploadStatus)})
	}
}

func (s *Server) watch(c net.Conn, enc *json.Encoder) {
	w := &watcher{ch: make(chan Record, watcherQueue)}
	s.mu.Lock()
	s.watchers[w] = struct{}{}
	s.mu.Unlock()
	s.nwatch.Add(1)
	defer func() {
		s.nwatch.Add(-1)
		s.mu.Lock()
		delete(s.watchers, w)
		s.mu.Unlock()
	}()
	var rep Reply
	if fn := s.hooks.Load(); fn != nil {
		rep.Hooks = (*fn)()
	}
	if err := enc.Encode(rep); err != nil {
		return
	}
	// A client that hangs up is noticed by the read returning.
	gone := make(chan struct{})
	go func() {
		var b [1]byte
		_, _ = c.Read(b[:])
		close(gone)
	}()
	for {
		select {
		case r := <-w.ch:
			r.Dropped = w.dropped.Swap(0)
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if err := enc.Encode(r); err != nil {
				return
			}
		case <-gone:
			return
		case <-s.closed:
			return
		}
	}
}

// Snapshot asks the agent at path for an on-demand bundle and returns its path.
func Snapshot(ctx context.Context, path string) (string, error) {
	c, err := dial(ctx, path)
	if err != nil {
		return "", err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := json.NewEncoder(c).Encode(Request{Op: OpSnapshot}); err != nil {
		return "", err
	}
	var rep Reply
	if err := json.NewDecoder(c).Decode(&rep); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("agent at %s: %w", path, err)
	}
	if rep.Error != "" {
		return "", errors.New(rep.Error)
	}
	return rep.Bundle, nil
}

// UploadStatus asks the agent at path for its upload queue.
func UploadStatus(ctx context.Context, path string) (upload.Status, error) {
	c, err := dial(ctx, path)
	if err != nil {
		return upload.Status{}, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := json.NewEncoder(c).Encode(Request{Op: OpUploadStatus}); err != nil {
		return upload.Status{}, err
	}
	var rep Reply
	if err := json.NewDecoder(c).Decode(&rep); err != nil {
		if ctx.Err() != nil {
			return upload.Status{}, ctx.Err()
		}
		return upload.Status{}, fmt.Errorf("agent at %s: %w", path, err)
	}
	if rep.Error != "" {
		return upload.Status{}, errors.New(rep.Error)
	}
	if rep.Upload == nil {
		return upload.Status{}, fmt.Errorf("agent at %s: no upload status in the reply", path)
	}
	return *rep.Upload, nil
}

// Watch streams the agent's records to fn until ctx ends or the agent goes away. hooks,
// when not nil, is first told the agent's probe hooks.
func Watch(ctx context.Context, path string, hooks func([]bpf.HookStatus), fn func(Record)) error {
	c, err := dial(ctx, path)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := json.NewEncoder(c).Encode(Request{Op: OpWatch}); err != nil {
		return err
	}
	dec := json.NewDecoder(c)
	var rep Reply
	if err := dec.Decode(&rep); err != nil {
		return fmt.Errorf("agent at %s: %w", path, err)
	}
	if rep.Error != "" {
		return errors.New(rep.Error)
	}
	if hooks != nil {
		hooks(rep.Hooks)
	}
	for {
		var r Record
		if err := dec.Decode(&r); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("agent at %s: %w", path, err)
		}
		fn(r)
	}
}

// ErrAgentRunning says another agent answers at the socket path.
var ErrAgentRunning = errors.New("another aod agent is running")

// runningError is ErrAgentRunning naming the other agent's pid when it is known.
type runningError struct{ msg string }

func (e runningError) Error() string        { return e.msg }
func (e runningError) Is(target error) bool { return target == ErrAgentRunning }

// ErrNoAgent says no agent listens at the socket path.
var ErrNoAgent = errors.New("no aod agent is running")

func dial(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w (socket %s)", ErrNoAgent, path)
		}
		return nil, err
	}
	return c, nil
}
