/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef AOD_HIST_H
#define AOD_HIST_H

#include "aod.h"

/*
 * aod_hist_slot returns the histogram slot of a latency: 0 for the zero bucket
 * (ns <= 2^(MIN_INDEX/4) s), else 1 + the kernel bucket j with bound[j] < ns <= bound[j+1]
 * (clamped to the last bucket above the top bound); see internal/latencyhist.
 *
 * A binary search of exactly AOD_HIST_SEARCH_STEPS comparisons: j only ever grows by
 * the step, so j + step <= AOD_HIST_NUM_BUCKETS - 1 and the top bound is never read.
 * It is a global (non-inlined) function so the verifier checks its 2^steps paths once,
 * instead of carrying them through the caller's remaining code.
 */
__attribute__((noinline)) __u32 aod_hist_slot(__u64 ns)
{
	__u32 j = 0;

	if (ns <= aod_hist_bounds_ns[0])
		return 0;
#pragma unroll
	for (__u32 step = AOD_HIST_NUM_BUCKETS / 2; step > 0; step /= 2) {
		if (ns > aod_hist_bounds_ns[(j + step) & (AOD_HIST_NUM_BUCKETS - 1)])
			j += step;
	}
	return j + 1;
}

#endif /* AOD_HIST_H */
