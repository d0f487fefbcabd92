package config

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// MaxNodes bounds the YAML nodes of a document with every alias expanded. An alias
// is a reference: a list of 1,000 names under an anchor, reused in 2,000 rules, is
// 2,000,000 values in a 143 KB file, and each would be checked, reported and shown.
// A configuration has a few thousand nodes; MaxNodes leaves room for large rule sets
// and refuses the amplification.
const MaxNodes = 100_000

// MaxReported bounds the problems printed for one file: past it only their number is
// given, since the first ones tell what is wrong.
const MaxReported = 100

// checkSize refuses a document that has more than MaxNodes nodes once aliases are
// expanded, or an alias that contains itself. The issue points at the alias (or,
// without one, the node) that crosses the limit.
func checkSize(name string, root *yaml.Node) error {
	c := sizeCounter{expanded: map[*yaml.Node]int{}}
	if c.walk(root) {
		return nil
	}
	is := Issue{File: name, Line: c.at.Line, Column: c.at.Column}
	switch {
	case c.recursive:
		is.Message = fmt.Sprintf("alias *%s refers to the node that contains it: got a recursive alias; allowed: an alias of a node defined before it, outside it", c.at.Value)
	case c.at.Kind == yaml.AliasNode:
		is.Message = fmt.Sprintf("alias *%s (anchor on line %d) takes the document past %d nodes (keys and values) once aliases are expanded; allowed: at most %d nodes, aliases expanded (write the rules out, or share fewer of them)",
			c.at.Value, c.at.Alias.Line, MaxNodes, MaxNodes)
	default:
		is.Message = fmt.Sprintf("the document has more than %d nodes (keys and values); allowed: at most %d (a configuration has a few thousand)", MaxNodes, MaxNodes)
	}
	return &Error{Issues: []Issue{is}}
}

// sizeCounter counts nodes as if every alias were replaced by a copy of its anchor's
// node. Only anchored nodes can be an alias's target, so only their expanded sizes
// are remembered; the walk itself visits each node of the file once.
type sizeCounter struct {
	total     int
	expanded  map[*yaml.Node]int // anchored node -> its size, expanded, once walked
	at        *yaml.Node         // where the limit was crossed
	recursive bool
}

// walk adds n's expanded size to the total; false once the limit is crossed.
func (c *sizeCounter) walk(n *yaml.Node) bool {
	if n == nil {
		return true
	}
	if n.Kind == yaml.AliasNode {
		size, ok := c.sizeOf(n.Alias, n)
		if !ok {
			return false
		}
		c.total += size
		if c.total > MaxNodes {
			c.at = n
			return false
		}
		return true
	}
	before := c.total
	c.total++
	if c.total > MaxNodes {
		c.at = n
		return false
	}
	for _, child := range n.Content {
		if !c.walk(child) {
			return false
		}
	}
	if n.Anchor != "" {
		c.expanded[n] = c.total - before
	}
	return true
}

// sizeOf returns the expanded size of an alias's target. A target not walked yet
// (an alias inside its own anchor's node) is recursive.
func (c *sizeCounter) sizeOf(target, alias *yaml.Node) (int, bool) {
	if target == nil {
		return 0, true
	}
	size, ok := c.expanded[target]
	if !ok {
		c.at, c.recursive = alias, true
		return 0, false
	}
	return size, true
}
