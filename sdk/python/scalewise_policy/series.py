"""Time-series helpers: windows, averages over time, percentiles, trends.

The same helpers as the Rust SDK's, with the same results: non-finite
values are skipped (a metric source may hand a policy a NaN, and a policy
should not have to care), and every function returns ``None`` when nothing
is left to compute on. They take a window or a list of numbers, and work on
the host's own window objects as on the kit's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple


def metric(input, name: str):
    """The window of metric ``name`` in a strategy's (or cost rule's) input, or ``None``."""
    for window in input.metrics:
        if window.name == name:
            return window
    return None


def last(window) -> Optional[float]:
    """The newest sample's value, or ``None`` for an empty or missing window."""
    if window is None or not window.values:
        return None
    return window.values[-1]


def samples(window) -> List[Tuple[int, float]]:
    """The window as ``(time, value)`` pairs, oldest first."""
    return list(zip(window.times, window.values))


def since(window, now: int, window_ms: int) -> List[Tuple[int, float]]:
    """The samples no older than ``window_ms`` before ``now``."""
    start = now - window_ms
    return [(t, v) for t, v in zip(window.times, window.values) if t >= start]


def _finite(values: Iterable[float]) -> List[float]:
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def mean(values: Iterable[float]) -> Optional[float]:
    """Arithmetic mean of the finite values."""
    xs = _finite(values)
    return sum(xs) / len(xs) if xs else None


def mean_since(window, now: int, window_ms: int) -> Optional[float]:
    """Mean of the window's samples in the last ``window_ms`` before ``now``."""
    return mean(v for _, v in since(window, now, window_ms))


def moving_average(values: Sequence[float], n: int) -> Optional[float]:
    """Mean of the last ``n`` finite values."""
    xs = _finite(values)
    return mean(xs[-max(n, 1):])


def ewma(values: Iterable[float], alpha: float) -> Optional[float]:
    """Exponentially weighted moving average, smoothing factor ``alpha`` in (0, 1]."""
    alpha = min(max(alpha, 5e-324), 1.0)
    acc = None
    for v in _finite(values):
        acc = v if acc is None else alpha * v + (1.0 - alpha) * acc
    return acc


def percentile(values, p: float) -> Optional[float]:
    """The ``p``-th percentile (0 to 100) of a window or a list, linearly
    interpolated between ranks."""
    if hasattr(values, "values") and not isinstance(values, dict):
        values = values.values
    xs = sorted(_finite(values))
    if not xs:
        return None
    rank = min(max(p, 0.0), 100.0) / 100.0 * (len(xs) - 1)
    lo, hi = math.floor(rank), math.ceil(rank)
    return xs[lo] + (xs[hi] - xs[lo]) * (rank - lo)


@dataclass
class Trend:
    """A least-squares line: ``value = intercept + slope * (t - origin)``."""

    slope: float
    """Change per millisecond."""
    intercept: float
    """The value at ``origin``."""
    origin: int
    """The time the intercept refers to (the first sample's)."""

    def at(self, at: int) -> float:
        """The line's value at time ``at``."""
        return self.intercept + self.slope * (at - self.origin)

    def per_second(self) -> float:
        return self.slope * 1000.0


def linear_trend(window) -> Optional[Trend]:
    """Fit a line through a window's finite samples; ``None`` without two distinct times."""
    points = [(t, v) for t, v in zip(window.times, window.values) if math.isfinite(v)]
    if not points:
        return None
    origin = points[0][0]
    n = len(points)
    mx = sum(t - origin for t, _ in points) / n
    my = sum(v for _, v in points) / n
    sxx = sum(((t - origin) - mx) ** 2 for t, _ in points)
    if sxx == 0.0:
        return None
    sxy = sum(((t - origin) - mx) * (v - my) for t, v in points)
    slope = sxy / sxx
    return Trend(slope, my - slope * mx, origin)


def counter_rate(window) -> Optional[float]:
    """Per-second rate of a counter over the window, tolerating resets as
    Prometheus's ``rate()`` does."""
    if len(window.times) == 0:
        return None
    seconds = (window.times[-1] - window.times[0]) / 1000.0
    if seconds <= 0:
        return None
    vs = window.values
    increase = sum(b - a if b >= a else b for a, b in zip(vs, vs[1:]))
    return increase / seconds


def capacity(pool) -> int:
    """Running plus booting: what the pool will have once every launch lands."""
    return pool.running + pool.booting


def clamp(pool, desired: float) -> float:
    """``desired`` limited to the pool's ``[min, max]``; NaN becomes the current capacity."""
    if math.isnan(desired):
        return float(capacity(pool))
    return float(min(max(desired, pool.min), max(pool.max, pool.min)))


def proposal_of(vote):
    """A vote's proposal, or ``None`` when the expert abstained."""
    value = vote.ballot.value
    return value if hasattr(value, "desired") else None
