"""Standard errors of the numbers the analyses compare.

Every grid point of a surface is evaluated on the same fixed examples, so a loss J is a mean of
per-example losses and carries the standard error of that mean (the surface's
``{split}_loss_stderr``: sample standard deviation with ddof = 1, over sqrt(n)). Two points
(or two runs evaluated on the same subset) share the examples: the difference of their means
has the *paired* standard error — the standard error of the per-example differences — which is
much smaller than the unpaired sqrt(se_a² + se_b²) when the two losses move together.

Where only the two standard errors are known (a surface stores ``{split}_loss_stderr``, not the
per-example losses), `unpaired_stderr` is the bound to use: for positively correlated losses
(neighbouring grid points, consecutive epochs) it overstates the noise, so "exceeds its noise"
judged with it is conservative. Per-example losses at any point come from the evaluator
(`Evaluator.last_per_example` after `evaluate`), in the evaluation set's fixed order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def stderr_of_mean(per_example: Sequence[float] | np.ndarray) -> float:
    """The standard error of the mean: std (ddof = 1) / sqrt(n); NaN for n < 2."""
    x = np.asarray(per_example, dtype=np.float64).ravel()
    if x.size < 2:
        return math.nan
    return float(np.std(x, ddof=1) / math.sqrt(x.size))


def paired_stderr(
    per_example_a: Sequence[float] | np.ndarray, per_example_b: Sequence[float] | np.ndarray
) -> float:
    """The standard error of mean(a) − mean(b) for losses of the same examples in the same order:
    the standard error of the per-example differences (ddof = 1)."""
    a = np.asarray(per_example_a, dtype=np.float64).ravel()
    b = np.asarray(per_example_b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired standard error needs the same examples: {a.size} vs {b.size} losses")
    return stderr_of_mean(a - b)


def unpaired_stderr(se_a: float, se_b: float) -> float:
    """sqrt(se_a² + se_b²): the standard error of a difference of independent means (a
    conservative bound for positively correlated ones)."""
    return math.sqrt(float(se_a) ** 2 + float(se_b) ** 2)


def binomial_stderr(p: float, n: int) -> float:
    """The standard error of an accuracy p measured on n examples: sqrt(p(1 − p)/n)."""
    if n is None or n < 1 or p is None or not math.isfinite(p):
        return math.nan
    return math.sqrt(max(p * (1.0 - p), 0.0) / n)


def exceeds_noise(difference: float, stderr: float, z: float = 2.0) -> bool | None:
    """Whether |difference| > z·stderr (None when either is unknown)."""
    if difference is None or stderr is None or not math.isfinite(difference) or not math.isfinite(stderr):
        return None
    return bool(abs(difference) > z * stderr)


def compare(difference: float, stderr: float, z: float = 2.0, paired: bool = True) -> dict:
    """{"difference", "stderr", "z", "exceeds_noise", "paired"}: one comparison as the JSON states it."""
    return {
        "difference": difference,
        "stderr": stderr,
        "z": z,
        "exceeds_noise": exceeds_noise(difference, stderr, z),
        "paired": paired,
    }
