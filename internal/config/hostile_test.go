package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/linuxdiag/aod/internal/smb"
)

// errorRules returns an error anomaly with n rules; the first lists names under the
// anchor &names, the others reuse it by alias when alias is set, or list names again.
func errorRules(n int, names []string, alias bool) string {
	var b strings.Builder
	b.WriteString("anomalies:\n  smb:\n    error:\n      tool: smbiosnoop\n      rules:\n")
	list := "[" + strings.Join(names, ", ") + "]"
	fmt.Fprintf(&b, "        - {name: r0, acceptable_count: 1, track_errors: &names %s}\n", list)
	for i := 1; i < n; i++ {
		if alias {
			list = "*names"
		}
		fmt.Fprintf(&b, "        - {name: r%d, acceptable_count: 1, track_errors: %s}\n", i, list)
	}
	return b.String()
}

func badNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("BAD_%04d", i)
	}
	return names
}

func parseError(t *testing.T, src string) *Error {
	t.Helper()
	_, _, err := Parse("h.yaml", []byte(src))
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("got %v, want an *Error", err)
	}
	return cerr
}

// TestAliasAmplificationRefused: 1,000 names reused by alias in 2,000 rules would be
// 2,000,000 values to check and report; the alias that crosses MaxNodes is named
// with its line, and nothing else is reported.
func TestAliasAmplificationRefused(t *testing.T) {
	for _, names := range [][]string{badNames(1000), failureNames(1000)} {
		cerr := parseError(t, errorRules(2000, names, true))
		if len(cerr.Issues) != 1 || cerr.More != 0 {
			t.Fatalf("%d issues (+%d), want 1:\n%v", len(cerr.Issues), cerr.More, cerr)
		}
		is := cerr.Issues[0]
		// Each rule is its mapping, three keys and their values: 7 nodes and the names.
		wantLine := 6 + MaxNodes/(7+len(names))
		if is.Line != wantLine || is.Column == 0 ||
			!strings.Contains(is.Message, "alias *names (anchor on line 6) takes the document past 100000 nodes") {
			t.Errorf("issue %v; want the alias *names near line %d", is, wantLine)
		}
	}
}

// failureNames returns n NTSTATUS names of failures: valid in track_errors.
func failureNames(n int) []string {
	var names []string
	for name := range smb.StatusNames() {
		if code, _ := smb.LookupStatus(name); code>>30 == 3 && len(names) < n {
			names = append(names, name)
		}
	}
	return names
}

// TestModestAliasesAccepted: sharing a list among a few rules stays valid.
func TestModestAliasesAccepted(t *testing.T) {
	src := errorRules(20, []string{"STATUS_IO_TIMEOUT", "EIO"}, true)
	cfg, _, err := Parse("h.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if rules := cfg.Anomalies.SMB.Error.Rules; len(rules) != 20 || len(rules[19].TrackErrors) != 2 {
		t.Errorf("rules = %+v", rules)
	}
}

func TestRecursiveAliasRefused(t *testing.T) {
	cerr := parseError(t, "anomalies: &a\n  smb: [*a]\n")
	if len(cerr.Issues) != 1 || !strings.Contains(cerr.Issues[0].String(), "h.yaml:2:9: alias *a refers to the node that contains it") {
		t.Errorf("got %v", cerr)
	}
}

// TestProblemsBounded: the first MaxReported problems in file order are listed, and
// the number of the others.
func TestProblemsBounded(t *testing.T) {
	cerr := parseError(t, errorRules(3, badNames(150), false))
	if len(cerr.Issues) != MaxReported || cerr.More != 350 || cerr.Total() != 450 {
		t.Fatalf("%d issues, %d more; want %d and 350", len(cerr.Issues), cerr.More, MaxReported)
	}
	if first := cerr.Issues[0].String(); !strings.HasPrefix(first, "h.yaml:6:") || !strings.Contains(first, `"BAD_0000"`) {
		t.Errorf("first issue %q", first)
	}
	if last := cerr.Issues[MaxReported-1].Message; !strings.Contains(last, `"BAD_0099"`) {
		t.Errorf("last listed issue %q, want BAD_0099", last)
	}
	lines := strings.Split(cerr.Error(), "\n")
	if len(lines) != MaxReported+1 || lines[MaxReported] != "and 350 more problems" {
		t.Errorf("Error() ends %q", lines[len(lines)-1])
	}
}

// TestImpossiblePathsRefused: paths the kernel can never open are refused when the
// file is validated, not when aod first writes there.
func TestImpossiblePathsRefused(t *testing.T) {
	long := "/" + strings.Repeat("d/", 2000)
	component := "/var/" + strings.Repeat("x", 256)
	cases := []struct{ yaml, path, want string }{
		{`aod_output_dir: "/var/log/aod\nx"`, "aod_output_dir", `a control character ('\n' at byte 12) in a path: got "/var/log/aod\nx"`},
		{`aod_output_dir: "/var/log/aod\0"`, "aod_output_dir", `a control character ('\x00' at byte 12)`},
		{`aod_output_dir: "/var/log/\taod"`, "aod_output_dir", `a control character ('\t' at byte 9)`},
		{`aod_output_dir: "/var/log/\u0085aod"`, "aod_output_dir", `a control character ('\u0085' at byte 9)`},
		{"aod_output_dir: " + long, "aod_output_dir", "a path of 4001 bytes, longer than 3839"},
		{"aod_output_dir: " + component, "aod_output_dir", "a path component of 256 bytes"},
		{"telemetry: {otlp: {endpoint: \"https://c:4317\", tls: {ca_file: \"/etc/ca\\r.pem\"}}}", "telemetry.otlp.tls.ca_file", `a control character ('\r' at byte 7)`},
		{"telemetry: {otlp: {endpoint: \"https://c:4317\", tls: {cert_file: " + long + long + ", key_file: /k}}}", "telemetry.otlp.tls.cert_file", "a path of 8002 bytes, longer than 4095"},
		{"telemetry: {otlp: {endpoint: \"https://c:4317\", tls: {cert_file: /c, key_file: " + component + "}}}", "telemetry.otlp.tls.key_file", "longer than 255"},
	}
	for _, c := range cases {
		cerr := parseError(t, c.yaml+"\n")
		if len(cerr.Issues) != 1 || cerr.Issues[0].Path != c.path || !strings.Contains(cerr.Issues[0].Message, c.want) ||
			!strings.Contains(cerr.Issues[0].Message, "no control characters") {
			t.Errorf("%.60q: got %v; want %s: %s", c.yaml, cerr, c.path, c.want)
		}
	}
	if _, _, err := Parse("h.yaml", []byte("aod_output_dir: /"+strings.Repeat("d/", 1700)+strings.Repeat("n", 255)+"\n")); err != nil {
		t.Errorf("a long path within the limits: %v", err)
	}
}

// TestOddKeysQuoted: a key (or file name) with a control character is printed
// quoted, so that a message is one line and shows what the file holds.
func TestOddKeysQuoted(t *testing.T) {
	cerr := parseError(t, "\"watch\\e[2J\": 1\ncleanup: {\"max\\nage\": 1, \"\": 2}\n")
	var got []string
	for _, is := range cerr.Issues {
		got = append(got, is.Path)
		if s := is.String(); strings.ContainsAny(s, "\x1b\n") {
			t.Errorf("raw control character in %q", s)
		}
	}
	want := []string{`"watch\x1b[2J"`, `cleanup."max\nage"`, `cleanup.""`}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("paths %q, want %q", got, want)
	}
	if s := (Issue{File: "a\nb.yaml", Line: 1, Message: "m"}).String(); s != `"a\nb.yaml":1: m` {
		t.Errorf("file name printed as %q", s)
	}
}

// TestWarningsBounded: a list repeating one name warns once a repeat; past
// MaxReported warnings only their number is given.
func TestWarningsBounded(t *testing.T) {
	src := errorRules(1, slices.Repeat([]string{"EIO"}, 151), false)
	_, warns, err := Parse("h.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != MaxReported+1 || warns[MaxReported].String() != "h.yaml: and 50 more warnings" {
		t.Fatalf("%d warnings, last %v", len(warns), warns[len(warns)-1])
	}
	if !strings.Contains(warns[0].Message, "EIO is already listed") {
		t.Errorf("first warning %v", warns[0])
	}
}
