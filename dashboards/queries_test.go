package dashboards

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"
)

const (
	dashboardFile  = "aod-smb.json"
	alertsFile     = "alerts.yaml"
	alertsTestFile = "alerts.test.yaml" // promtool test rules
)

// The parts of Grafana's dashboard JSON model the tests look at.
type dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Panels        []panel
	Templating    struct{ List []variable }
	Annotations   struct{ List []annotation }
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type gridPos struct{ H, W, X, Y int }

type panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Datasource  *datasourceRef `json:"datasource"`
	GridPos     gridPos        `json:"gridPos"`
	Targets     []target       `json:"targets"`
	Panels      []panel        `json:"panels"` // a collapsed row's panels
}

type target struct {
	RefID        string         `json:"refId"`
	Datasource   *datasourceRef `json:"datasource"`
	Expr         string         `json:"expr"`
	LegendFormat string         `json:"legendFormat"`
	Format       string         `json:"format"`
	Instant      bool           `json:"instant"`
}

type variable struct {
	Type       string         `json:"type"`
	Name       string         `json:"name"`
	Query      string         `json:"query"`
	Datasource *datasourceRef `json:"datasource"`
	IncludeAll bool           `json:"includeAll"`
	AllValue   string         `json:"allValue"`
}

type annotation struct {
	Name        string         `json:"name"`
	BuiltIn     int            `json:"builtIn"`
	Datasource  *datasourceRef `json:"datasource"`
	Enable      bool           `json:"enable"`
	Expr        string         `json:"expr"`
	TitleFormat string         `json:"titleFormat"`
	TextFormat  string         `json:"textFormat"`
	TagKeys     string         `json:"tagKeys"`
	Filter      *struct {
		Exclude bool  `json:"exclude"`
		IDs     []int `json:"ids"`
	} `json:"filter"`
}

func loadDashboard(t *testing.T) *dashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return &d
}

// allPanels flattens rows: the panels of collapsed rows are nested in them.
func (d *dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// alertRule is one rule of a Prometheus rule file (the fields aod's rules use).
type alertRule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// loadAlerts reads the rules of alerts.yaml; promtool (TestPromtoolCheckRules) and the
// real Prometheus (TestQueriesAgainstPrometheus) validate them in full.
func loadAlerts(t *testing.T) []alertRule {
	t.Helper()
	raw, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name  string      `yaml:"name"`
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	var rules []alertRule
	for _, g := range file.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatalf("%s has no rules", alertsFile)
	}
	return rules
}

// query is one PromQL expression the dashboard or the alert rules evaluate.
type query struct {
	where   string   // which panel, annotation or alert, for messages
	expr    string   // as written, with Grafana's variables
	labels  []string // labels every series of the result must carry (legend, annotation text)
	instant bool     // evaluated at one time (tables, alert rules), else over a range
	alert   string   // the alert's name, for alert rules
}

// dashboardQueries returns every query of the dashboard's panels and annotations.
func dashboardQueries(d *dashboard) []query {
	return append(panelQueries(d), annotationQueries(d)...)
}

func panelQueries(d *dashboard) []query {
	var qs []query
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			qs = append(qs, query{
				where:   fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID),
				expr:    tg.Expr,
				labels:  templateLabels(tg.LegendFormat),
				instant: tg.Instant,
			})
		}
	}
	return qs
}

// annotationQueries returns the queries of the dashboard's own annotations.
func annotationQueries(d *dashboard) []query {
	var qs []query
	for _, a := range d.Annotations.List {
		if a.BuiltIn != 0 {
			continue
		}
		labels := templateLabels(a.TitleFormat + " " + a.TextFormat)
		for _, k := range strings.Split(a.TagKeys, ",") {
			if k = strings.TrimSpace(k); k != "" {
				labels = append(labels, k)
			}
		}
		slices.Sort(labels)
		qs = append(qs, query{where: fmt.Sprintf("annotation %q", a.Name), expr: a.Expr, labels: slices.Compact(labels)})
	}
	return qs
}

// alertQueries returns the expression of every alert rule, with the labels its
// summary and description print.
func alertQueries(rules []alertRule) []query {
	var qs []query
	for _, r := range rules {
		var text string
		for _, v := range r.Annotations {
			text += v
		}
		qs = append(qs, query{where: "alert " + r.Alert, expr: r.Expr, labels: alertLabels(text), instant: true, alert: r.Alert})
	}
	return qs
}

var (
	legendLabel = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
	alertLabel  = regexp.MustCompile(`\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)`)
	grafanaVar  = regexp.MustCompile(`\$(\{[a-zA-Z0-9_]+\}|[a-zA-Z0-9_]+)`)
	labelValues = regexp.MustCompile(`^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)
)

func templateLabels(format string) []string { return submatches(legendLabel, format) }
func alertLabels(text string) []string      { return submatches(alertLabel, text) }

func submatches(re *regexp.Regexp, s string) []string {
	var out []string
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// expand substitutes Grafana's variables in expr the way Grafana does before sending a
// query: vars holds the dashboard's variables (values already in PromQL regex form) and
// the built-in $__rate_interval, $__interval and $__range. A variable it does not know
// is an error: it would reach Prometheus as a syntax error or, worse, as a literal.
func expand(expr string, vars map[string]string) (string, error) {
	var unknown []string
	out := grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		name := strings.Trim(m[1:], "{}")
		v, ok := vars[name]
		if !ok {
			unknown = append(unknown, m)
			return m
		}
		return v
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("unknown variables %v in %q", unknown, expr)
	}
	return out, nil
}

// metricNames returns the metric names an expression reads. Every selector must name
// its metric: a selector by labels alone could match anything.
func metricNames(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	var nameless []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			if vs.Name == "" {
				nameless = append(nameless, vs.String())
			}
			names = append(names, vs.Name)
		}
		return nil
	})
	if len(nameless) > 0 {
		return nil, fmt.Errorf("selectors without a metric name: %v", nameless)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// variableQuery splits a Grafana label_values(selector, label) variable query.
func variableQuery(q string) (selector, label string, ok bool) {
	m := labelValues.FindStringSubmatch(strings.TrimSpace(q))
	if m == nil {
		return "", "", false
	}
	return strings.TrimSpace(m[1]), m[2], true
}

// promRegex writes a literal value the way Grafana formats a variable for a regex
// matcher: regex metacharacters escaped, then escaped again for the PromQL string.
func promRegex(v string) string {
	return strings.ReplaceAll(regexp.QuoteMeta(v), `\`, `\\`)
}
