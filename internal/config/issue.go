package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Issue is one problem (or warning) found in a configuration file.
type Issue struct {
	File   string
	Line   int // 1-based; 0 when the problem has no position (an unreadable file)
	Column int // 1-based; 0 when unknown
	// Path is the key path of the offending value, e.g.
	// anomalies.smb.latency.track_commands[1].command; "" for the whole file.
	Path string
	// Message says what is wrong, with the bad value and what is allowed.
	Message string
}

// String formats the issue the way compilers do: file:line:column: path: message.
func (i Issue) String() string {
	var b strings.Builder
	b.WriteString(printable(i.File))
	if i.Line > 0 {
		fmt.Fprintf(&b, ":%d", i.Line)
		if i.Column > 0 {
			fmt.Fprintf(&b, ":%d", i.Column)
		}
	}
	b.WriteString(": ")
	if i.Path != "" {
		b.WriteString(i.Path)
		b.WriteString(": ")
	}
	b.WriteString(i.Message)
	return b.String()
}

// Error is the problems that made a file invalid, in file order: the first
// MaxReported of them, and the number of the others.
type Error struct {
	Issues []Issue
	More   int // problems found after Issues, not listed
}

// Error returns one issue per line, and the number of the others.
func (e *Error) Error() string {
	lines := make([]string, len(e.Issues), len(e.Issues)+1)
	for i, is := range e.Issues {
		lines[i] = is.String()
	}
	if e.More > 0 {
		lines = append(lines, e.MoreLine())
	}
	return strings.Join(lines, "\n")
}

// MoreLine says how many problems are not listed; "" when none.
func (e *Error) MoreLine() string {
	if e.More == 0 {
		return ""
	}
	return fmt.Sprintf("and %d more problems", e.More)
}

// Total is the number of problems found, listed or not.
func (e *Error) Total() int { return len(e.Issues) + e.More }

func sortIssues(issues []Issue) {
	slices.SortStableFunc(issues, func(a, b Issue) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
}
