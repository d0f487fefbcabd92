//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/linuxdiag/aod/agent"
	"github.com/linuxdiag/aod/configs"
	"github.com/linuxdiag/aod/internal/config"
)

// agentCommand is the hidden subcommand that runs the agent in a process of its own,
// so that its CPU time and memory are its own: the same agent.LimitProcs, agent.New
// and Start as `aod run`, with /proc/fs/cifs replaced by the bench's files
// (agent.Options.ProcDir) so that the shares the driver's requests name resolve as on
// a host with mounts.
const agentCommand = "agent"

func runAgentChild(args []string) int {
	fs := flag.NewFlagSet(agentCommand, flag.ContinueOnError)
	file := fs.String("config", "", "configuration file")
	procDir := fs.String("procdir", "", "stands for /proc/fs/cifs")
	profile := fs.String("cpuprofile", "", "write the agent's CPU profile to this file")
	if fs.Parse(args) != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	agent.LimitProcs() // as aod run does
	cfg, _, err := config.Load(*file)
	if err != nil {
		log.Error("configuration", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			log.Error("profile", "err", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Error("profile", "err", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	a, err := agent.New(cfg, agent.Options{Logger: log, ProcDir: *procDir})
	if err != nil {
		log.Error("agent", "err", err)
		return 1
	}
	if err := a.Start(ctx); err != nil {
		log.Error("agent start", "err", err)
		return 1
	}
	<-ctx.Done()
	// The bench kills the agent when done; a clean stop would run the shutdown bundle.
	return 0
}

// agentProc is the agent child as the bench sees it.
type agentProc struct {
	cmd       *exec.Cmd
	dir       string // the temporary tree: config, output folder, proc files
	outputDir string
	procDir   string
	promURL   string
}

// benchConfig turns the embedded default configuration into the bench's: output in
// the temporary tree, Prometheus on a free port, OTLP (plain HTTP, uncompressed so
// that payloads are measured as built) to the bench's sink, exported every
// exportEvery, or at the configuration's default period when exportEvery is 0.
func benchConfig(outputDir, promAddr, otlpURL string, exportEvery time.Duration) (string, error) {
	otlp := "endpoint: " + otlpURL + "\n    protocol: http\n    compression: none"
	if exportEvery > 0 {
		otlp += "\n    export_interval_sec: " + strconv.Itoa(int(exportEvery/time.Second))
	}
	text := string(configs.Default)
	for _, e := range []struct{ old, new string }{
		{"aod_output_dir: /var/log/aod", "aod_output_dir: " + outputDir},
		{"listen: 127.0.0.1:9464", "listen: " + promAddr},
		{`endpoint: ""`, otlp},
	} {
		if strings.Count(text, e.old) != 1 {
			return "", fmt.Errorf("default configuration: %q is not there once; the bench's edits need updating", e.old)
		}
		text = strings.Replace(text, e.old, e.new, 1)
	}
	return text, nil
}

// seriesExportInterval is the OTLP export period of the agent the series phases
// measure: each phase waits for two exports, which at the default period would add
// minutes to the run. The other phases' agent exports at the default period, as an
// agent deployed with an OTLP endpoint does.
const seriesExportInterval = 5 * time.Second

// freeAddr returns a loopback address with a port free at the time of asking.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startAgent writes the configuration (exporting OTLP every exportEvery, 0 for the
// default) and the proc files into dir and starts the agent child, returning once its
// Prometheus endpoint answers.
func startAgent(dir, otlpURL, profile string, exportEvery time.Duration) (*agentProc, error) {
	promAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p := &agentProc{dir: dir, outputDir: filepath.Join(dir, "out"), procDir: filepath.Join(dir, "cifs"),
		promURL: "http://" + promAddr + "/metrics"}
	text, err := benchConfig(p.outputDir, promAddr, otlpURL, exportEvery)
	if err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(dir, "aod.yaml")
	if err := errors.Join(os.MkdirAll(p.procDir, 0o755), os.WriteFile(cfgFile, []byte(text), 0o644),
		writeDebugData(p.procDir, steadyShares)); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(self, agentCommand, "-config", cfgFile, "-procdir", p.procDir, "-cpuprofile", profile)
	p.cmd.Stdout, p.cmd.Stderr = os.Stderr, os.Stderr
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(p.promURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("the agent did not serve %s within 30s: %v", p.promURL, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *agentProc) pid() int { return p.cmd.Process.Pid }

// stop ends the agent without its clean stop (no shutdown bundle): SIGTERM, which
// only ends its profile, then SIGKILL if it is still there after 5 s.
func (p *agentProc) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.AfterFunc(5*time.Second, func() { p.cmd.Process.Kill() })
	p.cmd.Wait()
	t.Stop()
}

// benchSession is the SMB session id of every request the driver sends; share i
// (0-based) is tree id i+1 on it.
const benchSession = 0x1

// writeDebugData writes a /proc/fs/cifs/DebugData listing one session with n shares,
// \\bench\share<i> with tid i+1, and a Stats with each share's counters, as the
// cifs module lists them.
func writeDebugData(dir string, n int) error {
	var dd, st strings.Builder
	fmt.Fprintf(&dd, "Servers: \n1) ConnectionId: 0x1 Hostname: bench \n\t1) Address: 127.0.0.1 Uses: 1\n\tSecurity type: RawNTLMSSP SessionId: %#x\n\tShares: \n", benchSession)
	fmt.Fprintf(&st, "Resources in use\nCIFS Session: 1\nShare (unique mount targets): %d\nOperations (MIDs): 0\n\n0 session 0 share reconnects\n", n)
	for i := range n {
		fmt.Fprintf(&dd, "\t%d) \\\\bench\\share%d Mounts: 1\n\ttid: %#x\n\n", i+1, i, i+1)
		fmt.Fprintf(&st, "%d) \\\\bench\\share%d\nSMBs: 1000 since 2026-12-01 00:00:00 UTC\nBytes read: 4096  Bytes written: 4096\n"+
			"Open files: 1 total (local), 1 open on server\nTreeConnects: 1 total 0 failed\nCreates: 10 total 1 failed\n"+
			"Reads: 100 total 0 failed\nWrites: 100 total 0 failed\n", i+1, i)
	}
	return errors.Join(os.WriteFile(filepath.Join(dir, "DebugData"), []byte(dd.String()), 0o644),
		os.WriteFile(filepath.Join(dir, "Stats"), []byte(st.String()), 0o644))
}
