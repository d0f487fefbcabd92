// Package latencyhist defines the latency histogram bucket layout shared by the BPF
// programs (bpf/include/aod_buckets.h) and user space.
//
// Kernel bucket j (0 <= j < NumBuckets) is exactly the OpenTelemetry exponential-histogram
// bucket of index MinIndex+j at Scale 2 for the latency in seconds: it holds latencies in
// (2^((MinIndex+j)/4), 2^((MinIndex+j+1)/4)] seconds (OTel buckets are upper-inclusive;
// base 2^(1/4), about 18.9 % wide). The kernel measures integer nanoseconds and compares
// them with floor(1e9 * 2^(i/4)); for an integer ns, ns > floor(b) exactly when ns > b,
// so the kernel's bucket choice has no rounding error at all.
//
// Latencies at or below 2^(MinIndex/4) s (about 0.95 µs; no SMB round trip is that fast)
// go to the zero bucket, exported as the OTel zero bucket with ZeroThreshold. Latencies
// above the top bound 2^((MinIndex+NumBuckets)/4) s (4096 s) are counted in the last
// bucket: that bucket alone is open-ended, which exporters must state if they care.
//
// The bounds table is generated with exact integer arithmetic (math/big) by
// internal/gentable into bounds.go and the C header; a test fails if either is stale.
package latencyhist

//go:generate go run ./internal/gentable -min -80 -n 128 -go bounds.go -c ../../bpf/include/aod_buckets.h
