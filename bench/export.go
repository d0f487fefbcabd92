//go:build linux

package main

import (
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// otlpSink is an OTLP/HTTP receiver that keeps the size of what it is sent: the last
// metrics request (a cumulative export holds every series, so it is the payload of
// one interval) and the bytes of log records since asked.
type otlpSink struct {
	srv *http.Server
	url string

	mu          sync.Mutex
	lastMetrics int
	metricsAt   time.Time
	logBytes    int64
}

func startSink() (*otlpSink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &otlpSink{url: "http://" + l.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		switch r.URL.Path {
		case "/v1/metrics":
			s.lastMetrics, s.metricsAt = int(n), time.Now()
		case "/v1/logs":
			s.logBytes += n
		}
		s.mu.Unlock()
		// An empty Export*ServiceResponse: everything accepted.
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(l)
	return s, nil
}

// metricsAfter waits for a metrics export that started after t and returns its size.
func (s *otlpSink) metricsAfter(t time.Time, timeout time.Duration) (int, bool) {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		s.mu.Lock()
		n, at := s.lastMetrics, s.metricsAt
		s.mu.Unlock()
		if at.After(t) {
			return n, true
		}
	}
	return 0, false
}

func (s *otlpSink) takeLogBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.logBytes
	s.logBytes = 0
	return n
}

// scrape returns the size of the Prometheus endpoint's answer, uncompressed.
func scrape(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	return int(n), err
}
