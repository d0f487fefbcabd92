package main

import (
	"bytes"
	"os"
	"regexp"
	"strconv"
	"testing"
)

// generateLine is the go:generate directive whose flags define the committed tables.
var generateLine = regexp.MustCompile(`(?m)^//go:generate go run \./internal/gentable -min (-?\d+) -n (\d+) -go (\S+) -c (\S+)$`)

// TestCommittedTablesAreCurrent fails when the committed Go file or C header differ from
// what the go:generate line in internal/latencyhist would produce, so the kernel and
// user space can never disagree on bucket bounds.
func TestCommittedTablesAreCurrent(t *testing.T) {
	const pkgDir = "../../"
	doc, err := os.ReadFile(pkgDir + "doc.go")
	if err != nil {
		t.Fatal(err)
	}
	m := generateLine.FindSubmatch(doc)
	if m == nil {
		t.Fatal("no go:generate line for gentable in internal/latencyhist/doc.go")
	}
	minIndex, _ := strconv.Atoi(string(m[1]))
	n, _ := strconv.Atoi(string(m[2]))
	tab, err := newTable(minIndex, n)
	if err != nil {
		t.Fatal(err)
	}
	goSrc, err := tab.goSource()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path string
		want []byte
	}{
		{pkgDir + string(m[3]), goSrc},
		{pkgDir + string(m[4]), tab.cHeader()},
	} {
		got, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, f.want) {
			t.Errorf("%s is stale: run go generate ./internal/latencyhist", f.path)
		}
	}
}

func TestNewTableRejectsBadLayouts(t *testing.T) {
	if _, err := newTable(-80, 100); err == nil {
		t.Error("non power of two bucket count accepted")
	}
	// Below ~2^-120 s the bounds collapse to 0 ns and stop increasing.
	if _, err := newTable(-140, 8); err == nil {
		t.Error("range whose bounds do not increase accepted")
	}
	// 1e9 * 2^(260/4) overflows uint64.
	if _, err := newTable(240, 32); err == nil {
		t.Error("range overflowing uint64 accepted")
	}
}

func TestBoundNsKnownValues(t *testing.T) {
	for _, c := range []struct {
		i    int
		want uint64
	}{
		{0, 1_000_000_000}, // 1 s
		{4, 2_000_000_000}, // 2 s
		{-4, 500_000_000},  // 0.5 s
		{1, 1_189_207_115}, // 2^0.25 = 1.189207115002721...
		{-80, 953},         // 2^-20 s = 953.67 ns
		{48, 4_096_000_000_000},
	} {
		got, err := boundNs(c.i)
		if err != nil || got != c.want {
			t.Errorf("boundNs(%d) = %d, %v; want %d", c.i, got, err, c.want)
		}
	}
}
