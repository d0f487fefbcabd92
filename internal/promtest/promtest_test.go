package promtest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// served is what the test target exposes: a counter carrying job and instance labels
// of its own, as aod's exporter does.
const served = `# TYPE demo_requests_total counter
demo_requests_total{job="served-job",instance="served-host",kind="read"} 3
`

const rules = `groups:
  - name: demo
    rules:
      - alert: DemoRequests
        expr: demo_requests_total > 0
        labels:
          severity: info
        annotations:
          summary: '{{ $value }} requests on {{ $labels.instance }}'
`

func target(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, served)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestScrapeLabelsAndRules checks the scrape configuration Start writes: target labels
// name the instance unless the served labels are honoured, and the rule files are
// loaded and evaluated.
func TestScrapeLabelsAndRules(t *testing.T) {
	ruleFile := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(ruleFile, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, honor := range []bool{false, true} {
		t.Run(fmt.Sprintf("honor_labels=%v", honor), func(t *testing.T) {
			t.Parallel() // each waits seconds for its Prometheus's first scrape
			addr := target(t)
			prom := Start(t, Options{
				Targets:     []Target{{Address: addr, Labels: map[string]string{"instance": "named"}}},
				RuleFiles:   []string{ruleFile},
				HonorLabels: honor,
			})
			start := time.Now()
			prom.WaitForTargetsUp(t, nil)
			prom.WaitForScrapeAfter(t, start, nil)

			v, err := prom.Query(context.Background(), `demo_requests_total`)
			if err != nil {
				t.Fatal(err)
			}
			want := model.Metric{"__name__": "demo_requests_total", "kind": "read",
				"job": DefaultJob, "instance": "named", "exported_job": "served-job", "exported_instance": "served-host"}
			if honor {
				want = model.Metric{"__name__": "demo_requests_total", "kind": "read", "job": "served-job", "instance": "served-host"}
			}
			if len(v) != 1 || !v[0].Metric.Equal(want) || v[0].Value != 3 {
				t.Fatalf("demo_requests_total = %v, want %v 3", v, want)
			}

			prom.WaitFor(t, "the alert", func() (bool, string) {
				res, err := prom.API.Alerts(context.Background())
				if err != nil {
					return false, err.Error()
				}
				for _, a := range res.Alerts {
					if a.Labels["alertname"] == "DemoRequests" && a.Annotations["summary"] == model.LabelValue("3 requests on "+string(want["instance"])) {
						return true, ""
					}
				}
				return false, fmt.Sprint(res.Alerts)
			})
		})
	}
}

func TestQueryNeedsAVector(t *testing.T) {
	prom := Start(t, Options{})
	if _, err := prom.Query(context.Background(), `scalar(vector(1))`); err == nil || !strings.Contains(err.Error(), "want a vector") {
		t.Fatalf("Query of a scalar: %v, want an error", err)
	}
	v, err := prom.Query(context.Background(), `vector(1)`)
	if err != nil || len(v) != 1 || v[0].Value != 1 {
		t.Fatalf("vector(1) = %v, %v", v, err)
	}
}
