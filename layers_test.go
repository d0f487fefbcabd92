package aod_test

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// module is this repository's module path.
const module = "github.com/linuxdiag/aod/"

// layer is one tier of the tree. Imports may only run from a higher tier to a lower
// one (or stay inside one package's tree), so the collector components, the
// standalone agent and the engines below them can each be read without the others.
type layer struct {
	name     string
	prefixes []string // module-relative path prefixes that belong to this tier
}

// layers lists the tiers from the top down: commands, the agent's wiring, the collector
// components, the engines (kernel loader and shared libraries), and the protocol tables.
var layers = []layer{
	{"command", []string{"cmd/", "test/", "bench", "packaging"}},
	{"agent", []string{"agent", "dashboards"}},
	{"component", []string{"receiver/", "processor/", "exporter/"}},
	{"engine", []string{"bpf", "internal/"}},
	{"table", []string{"internal/proto", "internal/smb", "internal/nfs", "internal/io", "internal/errno", "configs"}},
}

// tier returns the index in layers of a module-relative package path; the most
// specific prefix wins, so internal/smb is a table although internal/ is an engine.
func tier(pkg string) int {
	best, bestLen := -1, -1
	for i, l := range layers {
		for _, p := range l.prefixes {
			match := pkg == strings.TrimSuffix(p, "/") || strings.HasPrefix(pkg, strings.TrimSuffix(p, "/")+"/")
			if match && len(p) > bestLen {
				best, bestLen = i, len(p)
			}
		}
	}
	return best
}

// component returns the component a package belongs to ("receiver/aodreceiver"), or "".
func component(pkg string) string {
	parts := strings.Split(pkg, "/")
	if len(parts) >= 2 && tier(pkg) == 2 {
		return parts[0] + "/" + parts[1]
	}
	return ""
}

// violation explains why from may not import to, or returns "".
func violation(from, to string) string {
	tf, tt := tier(from), tier(to)
	switch {
	case tf < 0:
		return "package " + from + " is in no layer; add it to layers in layers_test.go"
	case tt < 0:
		return "package " + to + " is in no layer; add it to layers in layers_test.go"
	case tt < tf:
		return layers[tf].name + " " + from + " imports " + layers[tt].name + " " + to + " (imports run downward only)"
	case tf == 2 && tt == 2 && component(from) != component(to):
		return "component " + from + " imports another component, " + to + " (share code through internal/)"
	}
	return ""
}

// TestImportsRunDownward fails when any package, its tests included, imports a package
// of a higher layer: an engine importing a component or the agent, a component
// importing the agent or a command, a protocol table importing an engine.
func TestImportsRunDownward(t *testing.T) {
	reported := map[string]bool{}
	for _, tags := range []string{"", "e2e"} {
		cmd := exec.Command("go", "list", "-tags="+tags, "-f",
			`{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}`, "./...")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, stderr.String())
		}
		checked := 0
		for line := range strings.Lines(string(out)) {
			fields := strings.Fields(line)
			from, ok := strings.CutPrefix(fields[0], module)
			if !ok {
				continue
			}
			for _, imp := range fields[1:] {
				to, ok := strings.CutPrefix(imp, module)
				if !ok || to == from {
					continue
				}
				checked++
				if v := violation(from, to); v != "" && !reported[v] {
					reported[v] = true
					t.Error(v)
				}
			}
		}
		if checked == 0 {
			t.Fatalf("go list -tags=%q showed no import inside the module", tags)
		}
	}
}

// TestLayerRules checks the rules themselves on known cases, so a rule that stopped
// matching cannot pass silently.
func TestLayerRules(t *testing.T) {
	for _, c := range []struct {
		from, to string
		ok       bool
	}{
		{"cmd/aod", "agent", true},
		{"agent", "internal/detector", true},
		{"receiver/aodreceiver", "internal/ingest", true},
		{"internal/detector", "internal/smb", true},
		{"bpf", "internal/event", true},
		{"internal/smb", "internal/proto", true},
		{"internal/detector", "processor/aodanomalyconnector", false},
		{"internal/bundler", "agent", false},
		{"bpf", "receiver/aodreceiver", false},
		{"exporter/aodbundleconnector", "processor/aodanomalyconnector", false},
		{"receiver/aodreceiver", "agent", false},
		{"agent", "cmd/aod", false},
		{"internal/smb", "internal/detector", false},
		{"internal/smb", "bpf", false},
	} {
		if got := violation(c.from, c.to) == ""; got != c.ok {
			t.Errorf("%s -> %s allowed = %v, want %v", c.from, c.to, got, c.ok)
		}
	}
}
