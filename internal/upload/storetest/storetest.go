// Package storetest starts real object stores for tests: Azurite (Microsoft's
// Azure Storage emulator, from npm) and versitygw (an S3 gateway over a local
// directory, a Go program), each in its own temporary directory, plus a
// fault-injecting reverse proxy to put in front of either.
//
// A missing server binary skips the test with the command that installs it,
// except in CI (CI=true), where it fails the test: `make setup` installs both.
package storetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// Server is a store process the test can kill and restart on the same address
// and data.
type Server struct {
	t    testing.TB
	cmd  *exec.Cmd
	args []string
	bin  string
	// Addr is where the store listens: host:port for Azurite, a Unix socket path
	// for versitygw.
	Addr    string
	Network string // "tcp" or "unix"
	Dir     string // its data
	exited  chan struct{}
	// OnRestart, if set, runs after each Restart.
	OnRestart func()
}

// need finds a server binary or ends the test.
func need(t testing.TB, name, env, install string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if home, herr := os.UserHomeDir(); herr == nil {
		if gp := filepath.Join(home, "go", "bin", name); fileExists(gp) {
			return gp
		}
	}
	msg := fmt.Sprintf("%s not found (PATH, $%s): install it with `make setup` (%s)", name, env, install)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// startTimeout bounds a server start; both start in about a second here.
const startTimeout = 20 * time.Second

func (s *Server) start() {
	s.t.Helper()
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.Dir
	cmd.SysProcAttr = procAttr()
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody reads any more: drop
			}
		}
		close(lines)
	}()
	go func() { _ = cmd.Wait(); close(s.exited) }()
	if err := s.waitReady(lines); err != nil {
		s.Kill()
		s.t.Fatalf("%s did not start: %v", filepath.Base(s.bin), err)
	}
}

var listensRE = regexp.MustCompile(`listens on https?://([0-9.]+:[0-9]+)`)

func (s *Server) waitReady(lines <-chan string) error {
	deadline := time.After(startTimeout)
	var seen []string
	if s.Network == "tcp" && s.Addr == "" {
		// Azurite picks a free port and prints it.
		for s.Addr == "" {
			select {
			case l, ok := <-lines:
				if !ok {
					return fmt.Errorf("exited: %q", seen)
				}
				seen = append(seen, l)
				if m := listensRE.FindStringSubmatch(l); m != nil {
					s.Addr = m[1]
				}
			case <-deadline:
				return fmt.Errorf("no address after %s: %q", startTimeout, seen)
			}
		}
	}
	// Ready when it accepts a connection: each failed dial is followed by a wait
	// for the process to exit or a short pause, within the deadline.
	for {
		c, err := net.DialTimeout(s.Network, s.Addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-s.exited:
			return errors.New("exited before listening")
		case <-deadline:
			return fmt.Errorf("not listening on %s after %s: %v", s.Addr, startTimeout, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Kill ends the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
}

// Restart starts the server again on the same address and data.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	if s.Network == "unix" {
		os.Remove(s.Addr)
	}
	s.start()
	if s.OnRestart != nil {
		s.OnRestart()
	}
}

// Dial connects to the server (for the proxy).
func (s *Server) Dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, s.Network, s.Addr)
}
