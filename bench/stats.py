"""min / median / p95 / max of a cell, and p99 for the target that asks for it."""
from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), so few trials still give a value."""
    data = sorted(values)
    if not data:
        raise ValueError("no values")
    pos = (len(data) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def summary(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """Failed trials (None) are counted, not averaged in."""
    got = [v for v in values if v is not None]
    if not got:
        return {"n": 0, "failed": len(values), "min": None, "median": None, "p95": None, "max": None}
    return {
        "n": len(got),
        "failed": len(values) - len(got),
        "min": min(got),
        "median": statistics.median(got),
        "p95": percentile(got, 95),
        "max": max(got),
    }
