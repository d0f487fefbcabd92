package dashboards

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/linuxdiag/aod/internal/nfs"
	"github.com/linuxdiag/aod/internal/otelconv"
	"github.com/linuxdiag/aod/internal/smb"
)

// dropReasons are the values of aod_drop_reason.
var dropReasons = []string{otelconv.DropRingFull, otelconv.DropQueueFull, otelconv.DropOrphaned, otelconv.DropStartCollision,
	otelconv.DropHistogramFull, otelconv.DropErrorMapFull, otelconv.DropAgedOut, otelconv.DropProbeSkipped}

// The dashboard's own variables besides the data source.
var dashboardVars = []string{"host", "server", "share", "command", "mount", "export"}

// allVars is every variable set to Grafana's "All" (allValue .*), with the built-in
// intervals of a 1 s scrape interval.
func allVars(rangeDur string) map[string]string {
	vars := map[string]string{"__rate_interval": "4s", "__interval": "1s", "__range": rangeDur}
	for _, v := range dashboardVars {
		vars[v] = ".*"
	}
	return vars
}

func TestDashboardStructure(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both are needed for a stable import", d.UID, d.Title)
	}
	if d.SchemaVersion < 39 {
		t.Errorf("schemaVersion %d: want a current Grafana schema (>= 39)", d.SchemaVersion)
	}

	vars := map[string]variable{}
	for _, v := range d.Templating.List {
		if _, dup := vars[v.Name]; dup {
			t.Errorf("variable %q defined twice", v.Name)
		}
		vars[v.Name] = v
	}
	if ds, ok := vars["datasource"]; !ok || ds.Type != "datasource" || ds.Query != "prometheus" {
		t.Errorf("want a variable \"datasource\" of type datasource for prometheus, got %+v", ds)
	}
	for _, name := range dashboardVars {
		v, ok := vars[name]
		if !ok {
			t.Errorf("variable %q missing", name)
			continue
		}
		checkDatasource(t, "variable "+name, v.Datasource)
		if v.Type != "query" || !v.IncludeAll || v.AllValue != ".*" {
			t.Errorf("variable %s: want a query variable with All = .*, got %+v", name, v)
		}
		sel, _, ok := variableQuery(v.Query)
		if !ok {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", name, v.Query)
			continue
		}
		checkExpr(t, "variable "+name, sel)
	}

	ids := map[int]string{}
	var boxes []panel
	for _, p := range d.allPanels() {
		if prev, dup := ids[p.ID]; dup || p.ID <= 0 {
			t.Errorf("panel %q: id %d not unique and positive (also %q)", p.Title, p.ID, prev)
		}
		ids[p.ID] = p.Title
		checkGrid(t, p)
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		if p.Type == "row" {
			if len(p.Targets) > 0 {
				t.Errorf("row %q has queries", p.Title)
			}
			continue
		}
		boxes = append(boxes, p)
		if p.Description == "" {
			t.Errorf("panel %q has no description", p.Title)
		}
		checkDatasource(t, "panel "+p.Title, p.Datasource)
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: refId %q empty or repeated", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource != nil {
				checkDatasource(t, "panel "+p.Title+" target "+tg.RefID, tg.Datasource)
			}
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q target %s has an empty expr", p.Title, tg.RefID)
			}
			if p.Type == "heatmap" && tg.Format != "heatmap" {
				t.Errorf("heatmap %q: target %s must use format heatmap to de-accumulate the buckets", p.Title, tg.RefID)
			}
		}
	}
	checkOverlaps(t, boxes)

	var used = map[string]bool{}
	for _, q := range dashboardQueries(d) {
		checkExpr(t, q.where, q.expr)
		for _, m := range grafanaVar.FindAllString(q.expr, -1) {
			used[strings.Trim(m[1:], "{}")] = true
		}
	}
	for _, v := range dashboardVars {
		if !used[v] {
			t.Errorf("variable %q is not used by any query", v)
		}
	}

	var custom int
	for _, a := range d.Annotations.List {
		if a.BuiltIn != 0 {
			continue
		}
		custom++
		checkDatasource(t, "annotation "+a.Name, a.Datasource)
		if !a.Enable || a.TitleFormat == "" || a.TagKeys == "" {
			t.Errorf("annotation %q: want it enabled with a title and tags", a.Name)
		}
		if a.Filter == nil || a.Filter.Exclude || len(a.Filter.IDs) == 0 {
			t.Errorf("annotation %q: want it shown on the latency panels only", a.Name)
			continue
		}
		for _, id := range a.Filter.IDs {
			if title, ok := ids[id]; !ok || !strings.Contains(strings.ToLower(title), "latency") {
				t.Errorf("annotation %q: panel %d (%q) is not a latency panel", a.Name, id, title)
			}
		}
	}
	if custom == 0 {
		t.Error("no anomaly annotation")
	}
}

func checkDatasource(t *testing.T, where string, ds *datasourceRef) {
	t.Helper()
	if ds == nil || ds.Type != "prometheus" || ds.UID != "${datasource}" {
		t.Errorf("%s: data source %+v, want prometheus ${datasource}", where, ds)
	}
}

// checkExpr parses a query with every variable at All, and checks the literal label
// values it matches: SMB2 command names, NFS procedure names, NTSTATUS names and NFS
// status names must be ones aod exports.
func checkExpr(t *testing.T, where, expr string) {
	t.Helper()
	e, err := expand(expr, allVars("1h"))
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	if _, err := metricNames(e); err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	ast, _ := parser.NewParser(parser.Options{}).ParseExpr(e)
	parser.Inspect(ast, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		for _, m := range vs.LabelMatchers {
			checkLiteralValues(t, where, vs.Name, m)
		}
		return nil
	})
}

// checkLiteralValues checks the values m matches on the metric named metric: an
// error_type is an NTSTATUS name on the SMB metrics and an NFS status or errno name on
// the NFS ones.
func checkLiteralValues(t *testing.T, where, metric string, m *labels.Matcher) {
	t.Helper()
	if m.Value == ".*" || m.Value == "" {
		return
	}
	values := []string{m.Value}
	if m.Type == labels.MatchRegexp || m.Type == labels.MatchNotRegexp {
		values = strings.Split(m.Value, "|")
	}
	for _, v := range values {
		switch m.Name {
		case "smb_command":
			if _, ok := smb.Table.LookupCommand(v); !ok {
				t.Errorf("%s: %q is not an SMB2 command name", where, v)
			}
		case "nfs_command":
			if code, ok := nfs.Table.LookupCommand(v); !ok || nfs.Table.CommandName(code) != v {
				t.Errorf("%s: %q is not an NFS procedure name as aod exports it", where, v)
			}
		case "error_type":
			if strings.HasPrefix(metric, "nfs_") {
				if code, ok := nfs.LookupStatus(v); !ok || nfs.StatusName(code) != v {
					t.Errorf("%s: %q is not an NFS status or errno name as aod exports it", where, v)
				}
			} else if c, ok := smb.CanonicalStatus(v); !ok || c != v {
				t.Errorf("%s: %q is not an NTSTATUS name as aod exports it (canonical %q)", where, v, c)
			}
		case "aod_drop_reason":
			if !slices.Contains(dropReasons, v) {
				t.Errorf("%s: %q is not a drop reason of the receiver %v", where, v, dropReasons)
			}
		}
	}
}

func checkGrid(t *testing.T, p panel) {
	t.Helper()
	g := p.GridPos
	if g.W < 1 || g.H < 1 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
		t.Errorf("panel %q: grid position %+v outside the 24-column grid", p.Title, g)
	}
	if p.Type == "row" && (g.W != 24 || g.H != 1 || g.X != 0) {
		t.Errorf("row %q: grid position %+v, want a full-width line", p.Title, g)
	}
}

// checkOverlaps fails on panels that cover the same grid cells.
func checkOverlaps(t *testing.T, ps []panel) {
	t.Helper()
	for i, a := range ps {
		for _, b := range ps[i+1:] {
			ga, gb := a.GridPos, b.GridPos
			if ga.X < gb.X+gb.W && gb.X < ga.X+ga.W && ga.Y < gb.Y+gb.H && gb.Y < ga.Y+ga.H {
				t.Errorf("panels %q %+v and %q %+v overlap", a.Title, ga, b.Title, gb)
			}
		}
	}
}

func TestAlertRulesStructure(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range loadAlerts(t) {
		if r.Alert == "" {
			t.Errorf("rule %q: only alerting rules belong in %s", r.Record, alertsFile)
			continue
		}
		if seen[r.Alert] {
			t.Errorf("alert %s defined twice", r.Alert)
		}
		seen[r.Alert] = true
		if r.Labels["severity"] == "" {
			t.Errorf("alert %s has no severity label", r.Alert)
		}
		if r.Annotations["summary"] == "" || !strings.Contains(r.Annotations["description"], "Runbook") {
			t.Errorf("alert %s: want a summary and a runbook-style description", r.Alert)
		}
		checkExpr(t, "alert "+r.Alert, r.Expr)
	}
}

// TestDocsDescribeEverything keeps docs/dashboards.md in step with the files it
// describes: every panel and every alert is named there.
func TestDocsDescribeEverything(t *testing.T) {
	raw, err := os.ReadFile("../docs/dashboards.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, p := range loadDashboard(t).allPanels() {
		if !strings.Contains(doc, p.Title) {
			t.Errorf("docs/dashboards.md does not describe panel %q", p.Title)
		}
	}
	for _, r := range loadAlerts(t) {
		if !strings.Contains(doc, r.Alert) {
			t.Errorf("docs/dashboards.md does not describe alert %s", r.Alert)
		}
	}
}

func TestPromtoolCheckRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus; CI installs it)")
	}
	out, err := exec.Command(promtool, "check", "rules", alertsFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", alertsFile, err, out)
	}
	alerts := loadAlerts(t)
	if want := "SUCCESS: " + strconv.Itoa(len(alerts)) + " rules found"; !strings.Contains(string(out), want) {
		t.Fatalf("promtool output lacks %q:\n%s", want, out)
	}
}

// TestPromtoolTestRules runs the rules' unit tests (alertsTestFile): the NFS alerts at
// the edges of their thresholds and durations, with the texts they render.
func TestPromtoolTestRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus; CI installs it)")
	}
	out, err := exec.Command(promtool, "test", "rules", alertsTestFile).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool test rules %s: %v\n%s", alertsTestFile, err, out)
	}
}
