//go:build !linux

package main

import (
	"errors"
	"time"
)

const (
	agentCommand = "agent"
	rateDuration = time.Minute
)

func runAgentChild([]string) int { return 1 }

func run(string, time.Duration, string) error { return errors.New("the benchmarks need Linux (BPF)") }
