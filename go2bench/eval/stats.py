"""Statistics of evaluation returns: normalised scores and Student-t intervals of the mean.

The one implementation of go2bench's means, intervals and normalisation; the protocol, the results
schema and the leaderboard all use it. Only numpy (scipy for the t quantile when installed).

* ``mean_return``: mean over all counted episodes (seeds x envs x episodes);
* ``ci95``: a two-sided 95% Student-t interval of the mean whose sampling unit is one env of one
  seed, i.e. its mean return over its K episodes (n = envs x seeds units, n - 1 degrees of
  freedom). Episodes of one env are not independent for an in-context agent, so they are not the
  unit;
* ``normalized_score = (mean_return - random_score) / (expert_score - random_score)`` and its
  interval (the same affine map of ``ci95``);
* ``per_episode``: for each episode index k (the in-context curve), the mean return over the
  envs x seeds of their k-th episode, its t-interval over those envs, and both normalised;
* ``normalize_per_theta``: task families normalise each trial's returns with the references of its
  own theta (the IQM and its bootstrap intervals are in :mod:`go2bench.eval.iqm`).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

__all__ = [
    "CI_UNIT",
    "PER_EPISODE_CI_UNIT",
    "normalized_score",
    "normalize_interval",
    "t_quantile",
    "mean_ci",
    "halfwidth",
    "summarize",
    "normalize_per_theta",
]

CI_UNIT = (
    "two-sided 95% Student-t interval of the mean; unit: one env of one seed (its mean return over "
    "its episodes), n = num_envs x seeds, n-1 degrees of freedom"
)
PER_EPISODE_CI_UNIT = (
    "two-sided 95% Student-t interval over envs x seeds of the return of the k-th episode of each env"
)


def normalized_score(mean_return: float | None, random_score: float | None,
                     expert_score: float | None) -> float | None:
    """(mean_return - random_score) / (expert_score - random_score); None without reference scores."""
    if random_score is None or expert_score is None or mean_return is None:
        return None
    if expert_score == random_score:
        raise ValueError(f"expert_score and random_score are equal ({expert_score}); no scale to normalise with")
    return (mean_return - random_score) / (expert_score - random_score)


def normalize_interval(low: float | None, high: float | None, random_score: float | None,
                       expert_score: float | None) -> tuple[float | None, float | None]:
    """An interval of returns mapped to normalised scores (ordered low, high); Nones without one."""
    if low is None or high is None or random_score is None or expert_score is None:
        return None, None
    a = normalized_score(low, random_score, expert_score)
    b = normalized_score(high, random_score, expert_score)
    return min(a, b), max(a, b)


def t_quantile(p: float, df: int) -> float:
    """Quantile ``p`` of Student's t with ``df`` degrees of freedom (scipy when installed)."""
    if df < 1:
        raise ValueError("df must be at least 1")
    try:
        from scipy import stats

        return float(stats.t.ppf(p, df))
    except ImportError:  # pragma: no cover - scipy is normally present
        pass
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) * math.sqrt(2.0 / (4 * p * (1 - p)))
    # Cornish-Fisher expansion around the normal quantile (error < 1e-3 for df >= 3).
    from statistics import NormalDist

    z, v = NormalDist().inv_cdf(p), float(df)
    return (z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3))


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float | None, float | None]:
    """(mean, low, high) of a Student-t interval of the mean of ``values``; no interval for n < 2."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("no values")
    m = float(x.mean())
    if x.size < 2:
        return m, None, None
    half = t_quantile(0.5 + level / 2, x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return m, m - half, m + half


def halfwidth(interval: Sequence[float | None]) -> float | None:
    """Half the width of a ``[low, high]`` interval; None when either end is None."""
    low, high = interval
    return None if low is None or high is None else (high - low) / 2


def summarize(returns: np.ndarray, random_score: float | None, expert_score: float | None) -> dict[str, Any]:
    """Statistics of returns shaped (seeds, envs, episodes): mean, 95% CI, normalised, per episode."""
    R = np.asarray(returns, dtype=np.float64)
    if R.ndim != 3 or R.size == 0:
        raise ValueError(f"returns must be (seeds, envs, episodes); got shape {R.shape}")
    units = R.mean(axis=2).reshape(-1)
    m, lo, hi = mean_ci(units)
    per: dict[str, list] = {key: [] for key in ("mean_return", "return_ci95_low", "return_ci95_high",
                                                "normalized_score", "normalized_ci95_low", "normalized_ci95_high")}
    for k in range(R.shape[2]):
        km, klo, khi = mean_ci(R[:, :, k].reshape(-1))
        nlo, nhi = normalize_interval(klo, khi, random_score, expert_score)
        for key, value in zip(per, (km, klo, khi, normalized_score(km, random_score, expert_score), nlo, nhi)):
            per[key].append(value)
    return {
        "mean_return": float(R.mean()),
        "std_return": float(R.std()),
        "ci95": [lo, hi],
        "ci95_halfwidth": halfwidth((lo, hi)),
        "ci_unit": CI_UNIT,
        "ci_units": int(units.size),
        "normalized_score": normalized_score(m, random_score, expert_score),
        "normalized_score_ci95": list(normalize_interval(lo, hi, random_score, expert_score)),
        "per_episode": {"episode_index": list(range(R.shape[2])), **per, "ci_unit": PER_EPISODE_CI_UNIT},
    }


def normalize_per_theta(returns: Any, random_returns: Any, privileged_returns: Any) -> np.ndarray:
    """(return - random(theta)) / (privileged(theta) - random(theta)), theta along axis 1.

    ``returns`` (seeds, thetas, episodes); ``random_returns`` and ``privileged_returns`` (thetas,),
    measured on the same theta with the same episode length. A theta whose privileged return does
    not exceed the random one cannot normalise anything: a ValueError names its index.
    """
    R = np.asarray(returns, dtype=np.float64)
    lo = np.asarray(random_returns, dtype=np.float64).reshape(-1)
    hi = np.asarray(privileged_returns, dtype=np.float64).reshape(-1)
    if R.ndim != 3 or R.shape[1] != lo.size or lo.shape != hi.shape:
        raise ValueError(f"returns (seeds, thetas, episodes) {R.shape} need one random and one privileged return "
                         f"per theta, got {lo.shape} and {hi.shape}")
    bad = np.flatnonzero(~(hi > lo) | ~np.isfinite(hi) | ~np.isfinite(lo))
    if bad.size:
        j = int(bad[0])
        raise ValueError(f"theta {j}: the privileged return {hi[j]} does not exceed the random return {lo[j]}; "
                         "no scale to normalise with")
    return (R - lo[None, :, None]) / (hi - lo)[None, :, None]
