package storetest

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Fault is what the proxy does with one request.
type Fault struct {
	// Status answers with this status without asking the server (0: forward).
	Status int
	// Hang holds the request until the client gives up (its timeout).
	Hang bool
	// DropReply forwards the request, lets the server finish it, then closes the
	// connection without the reply: the store has the object, the client does
	// not know.
	DropReply bool
	// HoldReply is DropReply, except that the connection is held open until the
	// client gives up: the client is still waiting when it is stopped. OnStored is
	// called once the server has replied.
	HoldReply bool
	OnStored  func()
	// AfterBytes, if set, is called once the server has been sent that many bytes
	// of the request body (Kill the server there to cut an upload in the middle).
	AfterBytes int64
	OnBytes    func()
}

// Proxy is an HTTP reverse proxy in front of a Server that injects faults and
// counts the objects the server stored.
type Proxy struct {
	*httptest.Server
	// Fault decides each request's fault (nil: none).
	Fault func(r *http.Request) Fault

	closing chan struct{} // closed when the test ends: held requests let go

	mu      sync.Mutex
	created map[string]int // PUT path -> 2xx replies from the server
	puts    map[string]int // PUT path -> requests seen
}

// NewProxy starts a proxy to s.
func NewProxy(t testing.TB, s *Server) *Proxy {
	p := &Proxy{created: map[string]int{}, puts: map[string]int{}, closing: make(chan struct{})}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: "http", Host: "store"})
			r.Out.Host = r.In.Host // signatures cover the Host header
		},
		Transport: &http.Transport{
			DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return s.Dial(ctx) },
			DisableKeepAlives: true,
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.Request.Method == http.MethodPut && resp.StatusCode/100 == 2 {
				p.mu.Lock()
				p.created[resp.Request.URL.Path]++
				p.mu.Unlock()
			}
			return nil
		},
		// The server went away: the client sees the connection drop, as it would
		// without a proxy.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) { hangUp(w) },
	}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		if p.Fault != nil {
			f = p.Fault(r)
		}
		if r.Method == http.MethodPut {
			p.mu.Lock()
			p.puts[r.URL.Path]++
			p.mu.Unlock()
		}
		switch {
		case f.Status != 0:
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(f.Status)
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="utf-8"?><Error><Code>InjectedFault</Code><Message>injected by the test proxy</Message></Error>`)
			return
		case f.Hang:
			// Read the body so the server notices the client hanging up.
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-p.closing:
			}
			return
		}
		if f.OnBytes != nil {
			r.Body = &tap{ReadCloser: r.Body, left: f.AfterBytes, fn: f.OnBytes}
		}
		if f.DropReply || f.HoldReply {
			// The server finishes the request even when the client is gone.
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r.WithContext(context.WithoutCancel(r.Context())))
			if f.OnStored != nil {
				f.OnStored()
			}
			if f.HoldReply {
				select {
				case <-r.Context().Done():
				case <-p.closing:
				}
			}
			hangUp(w)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		close(p.closing)
		p.Close()
	})
	return p
}

func hangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// Created returns how many times the server stored an object at each path whose
// name contains substr: more than 1 for one path is an overwrite.
func (p *Proxy) Created(substr string) map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := map[string]int{}
	for k, v := range p.created {
		if strings.Contains(k, substr) {
			m[k] = v
		}
	}
	return m
}

// Puts returns how many PUTs of each path containing substr reached the proxy.
func (p *Proxy) Puts(substr string) map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := map[string]int{}
	for k, v := range p.puts {
		if strings.Contains(k, substr) {
			m[k] = v
		}
	}
	return m
}

type tap struct {
	io.ReadCloser
	left int64
	fn   func()
	once sync.Once
}

func (t *tap) Read(b []byte) (int, error) {
	n, err := t.ReadCloser.Read(b)
	t.left -= int64(n)
	if t.left <= 0 {
		t.once.Do(t.fn)
	}
	return n, err
}
