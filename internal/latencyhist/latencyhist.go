package latencyhist

import "math"

// Scale is the OTel exponential-histogram scale of the kernel buckets: base 2^(2^-Scale).
const Scale = 2

// PrometheusMinExp and PrometheusMaxExp delimit the classic (explicit) bucket bounds
// offered for Prometheus: 2^e seconds for e in [PrometheusMinExp, PrometheusMaxExp],
// about 61 µs to 64 s. Each is a kernel bucket edge, so folding loses nothing but
// resolution.
const (
	PrometheusMinExp = -14
	PrometheusMaxExp = 6
)

// fourthRoots[r] is 2^(r/4), correctly rounded.
var fourthRoots = [4]float64{1, 1.189207115002721, 1.4142135623730951, 1.681792830507429}

// pow2Quarter returns 2^(i/4) as the nearest float64 (one rounding, in the root).
func pow2Quarter(i int) float64 {
	q, r := i/4, i%4
	if r < 0 {
		q, r = q-1, r+4
	}
	return math.Ldexp(fourthRoots[r], q)
}

// BoundNs returns the kernel's bound k (0 <= k <= NumBuckets) in nanoseconds:
// floor(1e9 * 2^((MinIndex+k)/4)). Kernel bucket j holds latencies ns with
// BoundNs(j) < ns <= BoundNs(j+1) (the last bucket also holds everything above).
func BoundNs(k int) uint64 { return boundsNs[k] }

// ZeroThreshold is the OTel zero threshold in seconds, 2^(MinIndex/4): the zero
// bucket holds latencies at or below it.
func ZeroThreshold() float64 { return pow2Quarter(MinIndex) }

// LowerBound returns the exclusive lower bound of kernel bucket j in seconds,
// 2^((MinIndex+j)/4).
func LowerBound(j int) float64 { return pow2Quarter(MinIndex + j) }

// UpperBound returns the inclusive upper bound of kernel bucket j in seconds,
// 2^((MinIndex+j+1)/4). The last bucket also counts latencies above it.
func UpperBound(j int) float64 { return pow2Quarter(MinIndex + j + 1) }

// OTelIndex returns the OTel exponential-histogram bucket index, at Scale, of kernel
// bucket j. Kernel buckets map one to one onto consecutive OTel indexes, so an exported
// positive bucket range has Offset = OTelIndex(0) = MinIndex.
func OTelIndex(j int) int32 { return int32(MinIndex + j) }

// BucketOf returns the kernel bucket of a latency in nanoseconds, exactly as the BPF
// programs compute it (bpf/include/aod_hist.h), or zero = true for the zero bucket.
func BucketOf(ns uint64) (j int, zero bool) {
	if ns <= boundsNs[0] {
		return 0, true
	}
	for step := NumBuckets / 2; step > 0; step /= 2 {
		if ns > boundsNs[j+step] {
			j += step
		}
	}
	return j, false
}

// PrometheusBounds returns the explicit bucket upper bounds in seconds, ascending:
// 2^PrometheusMinExp .. 2^PrometheusMaxExp. The caller owns the slice.
func PrometheusBounds() []float64 {
	b := make([]float64, 0, PrometheusMaxExp-PrometheusMinExp+1)
	for e := PrometheusMinExp; e <= PrometheusMaxExp; e++ {
		b = append(b, math.Ldexp(1, e))
	}
	return b
}

// NumPrometheusBuckets is the number of explicit buckets FoldPrometheus fills: one per
// bound plus the +Inf bucket.
const NumPrometheusBuckets = PrometheusMaxExp - PrometheusMinExp + 2

// promBucket[j] is the explicit bucket holding all of kernel bucket j: the first bound
// 2^e with 4e >= MinIndex+j+1 (the kernel bucket's upper edge), else +Inf.
var promBucket = func() (m [NumBuckets]uint8) {
	for j := range m {
		upper := MinIndex + j + 1 // upper edge is 2^(upper/4)
		b := 0
		for b < NumPrometheusBuckets-1 && 4*(PrometheusMinExp+b) < upper {
			b++
		}
		m[j] = uint8(b)
	}
	return m
}()

// FoldPrometheus folds a kernel histogram into the explicit buckets of
// PrometheusBounds, appending NumPrometheusBuckets non-cumulative counts to dst[:0]
// (OTel HistogramDataPoint.BucketCounts order; the last is +Inf). Both layouts are
// upper-inclusive and every explicit bound is a kernel edge, so the fold is exact; the
// zero bucket lands in the first explicit bucket.
func FoldPrometheus(zero uint64, buckets *[NumBuckets]uint64, dst []uint64) []uint64 {
	dst = append(dst[:0], make([]uint64, NumPrometheusBuckets)...)
	dst[0] = zero
	for j, c := range buckets {
		dst[promBucket[j]] += c
	}
	return dst
}
