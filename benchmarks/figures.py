"""Statistics the benchmarks share: what a handful of noisy runs can and cannot tell apart."""

from __future__ import annotations

import math
from collections.abc import Sequence


def median_interval(values: Sequence[float], confidence: float = 0.9) -> tuple[float, float, float]:
    """A distribution-free interval for the median of ``values`` (the sign test's): the
    narrowest pair of order statistics, k-th smallest and k-th largest, that holds the true
    median with at least ``confidence`` (or the whole range, when too few values reach it),
    and the coverage it has. With 5 rounds that is the range of all five (94 %): what a
    5-round median can and cannot tell apart."""
    ordered = sorted(values)
    count = len(ordered)
    below = 0.0  # P(at most k - 1 of the values fall below the median), growing with k
    best = (ordered[0], ordered[-1], 1.0 - 2 * 0.5**count)
    for k in range(1, (count + 1) // 2 + 1):
        below += math.comb(count, k - 1) * 0.5**count
        coverage = 1.0 - 2 * below
        if coverage < confidence:
            break
        best = (ordered[k - 1], ordered[count - k], coverage)
    return best
