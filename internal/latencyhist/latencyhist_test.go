package latencyhist

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

var tenPow36 = new(big.Int).Exp(big.NewInt(10), big.NewInt(36), nil)

// cmpScaled compares a^4 * 2^(-i) with 1e36 exactly (integers only): it returns the sign
// of a^4 - 1e36*2^i, i.e. of a ns - 1e9*2^(i/4).
func cmpScaled(a uint64, i int) int {
	l := new(big.Int).SetUint64(a)
	l.Mul(l, l)
	l.Mul(l, l)
	r := new(big.Int).Set(tenPow36)
	if i >= 0 {
		r.Lsh(r, uint(i))
	} else {
		l.Lsh(l, uint(-i))
	}
	return l.Cmp(r)
}

// exactOTelIndex returns the OTel scale-2 index of ns/1e9 seconds, from its definition:
// the i with 2^(i/4) < v <= 2^((i+1)/4), decided with integer arithmetic only.
func exactOTelIndex(ns uint64) int {
	i := int(math.Floor(4 * math.Log2(float64(ns)/1e9))) // estimate, then make exact
	for cmpScaled(ns, i) <= 0 {                          // v <= 2^(i/4): go lower
		i--
	}
	for cmpScaled(ns, i+1) > 0 { // v > 2^((i+1)/4): go higher
		i++
	}
	return i
}

// expectedBucket is where ns must land: the zero bucket at or below 2^(MinIndex/4),
// the OTel bucket otherwise, clamped into the last bucket above the top bound.
func expectedBucket(ns uint64) (int, bool) {
	i := exactOTelIndex(ns)
	switch {
	case i < MinIndex:
		return 0, true
	case i >= MinIndex+NumBuckets:
		return NumBuckets - 1, false
	}
	return i - MinIndex, false
}

func TestBoundsAreExactFloors(t *testing.T) {
	for k, b := range boundsNs {
		i := MinIndex + k
		// b = floor(1e9*2^(i/4)) iff b <= 1e9*2^(i/4) < b+1.
		if cmpScaled(b, i) > 0 || cmpScaled(b+1, i) <= 0 {
			t.Errorf("boundsNs[%d] = %d is not floor(1e9 * 2^(%d/4))", k, b, i)
		}
		if BoundNs(k) != b {
			t.Errorf("BoundNs(%d) = %d, want %d", k, BoundNs(k), b)
		}
	}
}

func TestBoundaryValuesLandInOTelBuckets(t *testing.T) {
	check := func(ns uint64) {
		t.Helper()
		gotJ, gotZero := BucketOf(ns)
		wantJ, wantZero := expectedBucket(ns)
		if gotJ != wantJ || gotZero != wantZero {
			t.Fatalf("BucketOf(%d) = (%d, zero=%v), want (%d, zero=%v)", ns, gotJ, gotZero, wantJ, wantZero)
		}
	}
	for _, b := range boundsNs {
		for _, ns := range []uint64{b - 1, b, b + 1} {
			check(ns)
		}
	}
	for _, ns := range []uint64{1, 2, 999, 1000, 1_000_000, 1_000_000_000, math.MaxUint64} {
		check(ns)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		check(1 + r.Uint64N(1<<44)) // 1 ns .. ~4.9 hours
	}

	// Spot checks against hand-computed values: 1 ms is in (2^(-40/4), 2^(-39/4)] s.
	if j, _ := BucketOf(1_000_000); OTelIndex(j) != -40 {
		t.Errorf("1 ms in OTel bucket %d, want -40", OTelIndex(j))
	}
	// Exactly 1 s is the upper edge of OTel bucket -1 (upper-inclusive).
	if j, _ := BucketOf(1_000_000_000); OTelIndex(j) != -1 {
		t.Errorf("1 s in OTel bucket %d, want -1", OTelIndex(j))
	}
	if j, _ := BucketOf(1_000_000_001); OTelIndex(j) != 0 {
		t.Errorf("1 s + 1 ns in OTel bucket %d, want 0", OTelIndex(j))
	}
}

func FuzzLatencyBucketOf(f *testing.F) {
	for _, b := range boundsNs {
		f.Add(b)
		f.Add(b + 1)
	}
	f.Fuzz(func(t *testing.T, ns uint64) {
		if ns == 0 {
			ns = 1
		}
		gotJ, gotZero := BucketOf(ns)
		wantJ, wantZero := expectedBucket(ns)
		if gotJ != wantJ || gotZero != wantZero {
			t.Fatalf("BucketOf(%d) = (%d, %v), want (%d, %v)", ns, gotJ, gotZero, wantJ, wantZero)
		}
	})
}

// nearestPow2Quarter returns the float64 nearest to 2^(i/4), computed with 256-bit
// big.Float square roots.
func nearestPow2Quarter(i int) float64 {
	q, r := i/4, i%4
	if r < 0 {
		q, r = q-1, r+4
	}
	x := new(big.Float).SetPrec(256).SetInt64(1 << r)
	x.Sqrt(x)
	x.Sqrt(x)
	x.SetMantExp(x, q)
	f, _ := x.Float64()
	return f
}

func TestBoundsInSeconds(t *testing.T) {
	if got := ZeroThreshold(); got != 0x1p-20 || MinIndex != -80 {
		t.Errorf("ZeroThreshold() = %g with MinIndex %d, want 2^-20 with -80", got, MinIndex)
	}
	for j := range NumBuckets {
		lo, hi := LowerBound(j), UpperBound(j)
		if want := nearestPow2Quarter(MinIndex + j); lo != want {
			t.Errorf("LowerBound(%d) = %v, want %v", j, lo, want)
		}
		if want := nearestPow2Quarter(MinIndex + j + 1); hi != want {
			t.Errorf("UpperBound(%d) = %v, want %v", j, hi, want)
		}
		if OTelIndex(j) != int32(MinIndex+j) {
			t.Errorf("OTelIndex(%d) = %d", j, OTelIndex(j))
		}
		// The kernel's integer bound is the floor of the same boundary.
		if got := math.Floor(lo * 1e9); math.Abs(got-float64(BoundNs(j))) > 1 {
			t.Errorf("bucket %d: floor(LowerBound*1e9) = %v, kernel bound %d", j, got, BoundNs(j))
		}
	}
}

func TestPrometheusFold(t *testing.T) {
	bounds := PrometheusBounds()
	if len(bounds) < 20 || bounds[0] > 64e-6 || bounds[len(bounds)-1] < 60 {
		t.Fatalf("want >= 20 bounds spanning ~50 µs to 60 s, got %d from %g to %g", len(bounds), bounds[0], bounds[len(bounds)-1])
	}
	if len(bounds)+1 != NumPrometheusBuckets {
		t.Fatalf("NumPrometheusBuckets = %d with %d bounds", NumPrometheusBuckets, len(bounds))
	}
	// Every bound 2^e is the edge 2^(4e/4) of the kernel layout.
	for e := PrometheusMinExp; e <= PrometheusMaxExp; e++ {
		if k := 4*e - MinIndex; k < 0 || k > NumBuckets {
			t.Fatalf("bound 2^%d is not a kernel edge", e)
		}
	}

	// Classify latencies directly against the explicit bounds (ns <= 1e9*2^e, exact
	// integer comparison) and through the kernel buckets plus the fold.
	var kernel [NumBuckets]uint64
	var zero uint64
	want := make([]uint64, NumPrometheusBuckets)
	add := func(ns uint64) {
		if j, z := BucketOf(ns); z {
			zero++
		} else {
			kernel[j]++
		}
		b := 0
		for b < len(bounds) && cmpScaled(ns, 4*(PrometheusMinExp+b)) > 0 {
			b++
		}
		want[b]++
	}
	for e := PrometheusMinExp; e <= PrometheusMaxExp; e++ {
		edge := uint64(math.Ldexp(1e9, e)) // 2^e s, exact for e >= -9; floor below
		add(edge)
		add(edge + 1)
		add(edge - 1)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		add(1 + r.Uint64N(1<<43))
	}
	add(500)                // zero bucket
	add(math.MaxUint64 / 2) // overflow into the last kernel bucket, then +Inf

	got := FoldPrometheus(zero, &kernel, make([]uint64, 3))
	if len(got) != NumPrometheusBuckets {
		t.Fatalf("fold gave %d buckets, want %d", len(got), NumPrometheusBuckets)
	}
	for b := range got {
		if got[b] != want[b] {
			t.Errorf("explicit bucket %d: fold %d, direct %d", b, got[b], want[b])
		}
	}

	// Reusing the destination must not allocate.
	if n := testing.AllocsPerRun(100, func() { got = FoldPrometheus(zero, &kernel, got) }); n != 0 {
		t.Errorf("FoldPrometheus with a reused dst allocates %v times", n)
	}
}
