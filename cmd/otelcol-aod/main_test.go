package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/otelcol/otelcoltest"
	"gopkg.in/yaml.v3"
)

// TestExampleConfigLoads loads the shipped example with the distribution's factories,
// as the collector does at start, and checks its pipelines wire our components.
func TestExampleConfigLoads(t *testing.T) {
	factories, err := components()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("OTLP_ENDPOINT", "localhost:4317")
	cfg, err := otelcoltest.LoadConfigAndValidate("../../otel-collector-example.yaml", factories)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"metrics":           {"aod"},
		"logs/events":       {"aod"},
		"traces/anomalies":  {"aodanomaly"},
		"metrics/anomalies": {"aodanomaly"},
		"traces/bundles":    {"aodbundle"},
		"logs/bundles":      {"aodbundle"},
	}
	for id, p := range cfg.Service.Pipelines {
		var recv []string
		for _, r := range p.Receivers {
			recv = append(recv, r.String())
		}
		if w, ok := want[id.String()]; !ok || !slices.Equal(recv, w) {
			t.Errorf("pipeline %s receivers %v, want %v", id, recv, w)
		}
		delete(want, id.String())
	}
	if len(want) > 0 {
		t.Errorf("missing pipelines %v", want)
	}
	if _, ok := cfg.Connectors[component.MustNewID("aodbundle")]; !ok {
		t.Error("no aodbundle connector")
	}
}

// TestComponentREADMEExamplesLoad loads the example configuration of each component's
// README with the distribution's factories, so the documented configurations work.
// A config_file in an example is pointed at the agent's embedded default.
func TestComponentREADMEExamplesLoad(t *testing.T) {
	factories, err := components()
	if err != nil {
		t.Fatal(err)
	}
	for _, readme := range []string{
		"../../receiver/aodreceiver/README.md",
		"../../processor/aodanomalyconnector/README.md",
		"../../exporter/aodbundleconnector/README.md",
	} {
		t.Run(readme, func(t *testing.T) {
			data, err := os.ReadFile(readme)
			if err != nil {
				t.Fatal(err)
			}
			_, rest, ok := strings.Cut(string(data), "```yaml\n")
			example, _, closed := strings.Cut(rest, "```")
			if !ok || !closed {
				t.Fatal("no yaml example")
			}
			example = strings.ReplaceAll(example, "/etc/aod/aod.yaml", "../../configs/aod.yaml")
			path := filepath.Join(t.TempDir(), "example.yaml")
			if err := os.WriteFile(path, []byte(example), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := otelcoltest.LoadConfigAndValidate(path, factories); err != nil {
				t.Fatalf("%v\n%s", err, example)
			}
		})
	}
}

// TestBuilderConfigListsTheSameComponents keeps builder-config.yaml (for ocb) and
// components() in step: every factory type must come from a module the manifest lists.
func TestBuilderConfigListsTheSameComponents(t *testing.T) {
	data, err := os.ReadFile("../../builder-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var manifest map[string]any
	if err := yaml.Unmarshal(data, &manifest); err != nil {
		t.Fatal(err)
	}
	modules := map[string][]string{}
	for _, kind := range []string{"receivers", "processors", "exporters", "connectors"} {
		list, _ := manifest[kind].([]any)
		for _, e := range list {
			m := e.(map[string]any)
			path, _ := m["import"].(string) // a package inside a module, as for ours
			if path == "" {
				gomod, _ := m["gomod"].(string)
				path = strings.Fields(gomod)[0]
			}
			modules[kind] = append(modules[kind], path)
		}
	}
	factories, err := components()
	if err != nil {
		t.Fatal(err)
	}
	// Component type -> the module path fragment that provides it.
	provider := map[string]string{
		"receivers/otlp": "otlpreceiver", "exporters/otlp": "otlpexporter",
		"aod": "receiver/aodreceiver", "batch": "batchprocessor",
		"memory_limiter": "memorylimiterprocessor", "aodanomaly": "processor/aodanomalyconnector",
		"aodbundle": "exporter/aodbundleconnector", "otlp_http": "otlphttpexporter",
		"debug": "debugexporter", "prometheus": "prometheusexporter",
		// Current names of the OTLP exporters; the maps also hold their old aliases.
		"otlp_grpc": "otlpexporter", "otlphttp": "otlphttpexporter",
	}
	check := func(kind string, types []component.Type) {
		used := map[string]bool{}
		for _, typ := range types {
			frag, ok := provider[kind+"/"+typ.String()]
			if !ok {
				frag, ok = provider[typ.String()]
			}
			if !ok {
				t.Errorf("%s %s: no known module", kind, typ)
				continue
			}
			used[frag] = true
			if !slices.ContainsFunc(modules[kind], func(m string) bool { return strings.Contains(m, frag) }) {
				t.Errorf("%s %s: builder-config.yaml lists no module with %q", kind, typ, frag)
			}
		}
		if len(used) != len(modules[kind]) {
			t.Errorf("%s: components() uses %d modules, builder-config.yaml lists %d", kind, len(used), len(modules[kind]))
		}
	}
	check("receivers", keys(factories.Receivers))
	check("processors", keys(factories.Processors))
	check("exporters", keys(factories.Exporters))
	check("connectors", keys(factories.Connectors))
}

func keys[V any](m map[component.Type]V) []component.Type {
	var out []component.Type
	for k := range m {
		out = append(out, k)
	}
	return out
}
