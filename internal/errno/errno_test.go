package errno

import "testing"

func TestErrno(t *testing.T) {
	for name, want := range map[string]int32{"EPERM": 1, "EIO": 5, "EAGAIN": 11, "EWOULDBLOCK": 11,
		"EACCES": 13, "ENOENT": 2, "ECONNRESET": 104, "EHOSTDOWN": 112, "EOPNOTSUPP": 95} {
		if got, ok := Lookup(name); !ok || got != want {
			t.Errorf("Lookup(%s) = %d, %v; want %d", name, got, ok, want)
		}
	}
	if got := Name(11); got != "EAGAIN" {
		t.Errorf("Name(11) = %q", got)
	}
	for _, e := range []int32{0, -5, 100000} {
		if got := Name(e); got != "" {
			t.Errorf("Name(%d) = %q, want empty", e, got)
		}
	}
	if _, ok := Lookup("eio"); ok {
		t.Error("Lookup accepted lower case")
	}
}

func TestLookupsDoNotAllocate(t *testing.T) {
	Lookup("EIO") // build the index outside the measurement
	for name, f := range map[string]func(){
		"Name":   func() { sink = Name(5) },
		"Lookup": func() { _, _ = Lookup("EACCES") },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s allocates %v times per call", name, n)
		}
	}
}

var sink string

func BenchmarkName(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sink = Name(int32(i%130 + 1))
	}
}
