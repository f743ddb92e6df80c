"""Interquartile mean and stratified bootstrap confidence intervals (the statistics of task families).

Our own implementation of what rliable (Agarwal et al. 2021, "Deep RL at the edge of the
statistical precipice") computes, checked against it in ``tests/test_family_eval.py``:

* :func:`iqm`: the 25% trimmed mean of all values (``scipy.stats.trim_mean(x, 0.25, axis=None)``,
  rliable's ``aggregate_iqm``): sort the n values, drop ``int(0.25 n)`` from each end, average
  the rest;
* :func:`bootstrap_distribution`: the statistic on resampled score matrices shaped (runs, strata)
  -- here (seeds, thetas). Stratified (rliable's ``StratifiedBootstrap``): for every stratum
  (theta), its runs (seeds) are drawn with replacement among that stratum's own runs, so a
  resample always holds every theta. ``resample_strata=True`` also draws the strata with
  replacement (rliable's ``task_bootstrap=True``): the uncertainty of a finite sample of thetas;
* :func:`percentile_interval`: the percentile interval of that distribution (``np.percentile``
  with linear interpolation at 2.5% and 97.5%, as arch's ``conf_int(method="percentile")``);
* :func:`aggregate`: the point IQM, both 95% intervals and the plain mean of one score matrix.

Resampling uses ``numpy.random.default_rng(seed)``: the same seed and shapes give the same
resample indices, so the intervals of two agents use common random numbers. With one run per
stratum the stratified interval has zero width (nothing is resampled); ``ci95_thetas`` is then
the informative one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["IQM_TEXT", "iqm", "bootstrap_distribution", "percentile_interval", "aggregate", "BOOTSTRAP_REPS"]

BOOTSTRAP_REPS = 2000
IQM_TEXT = "interquartile mean: the mean of the values left after dropping int(n/4) from each end (25% trimmed mean)"


def iqm(values: Any, axis: int | None = None) -> Any:
    """The interquartile mean of all ``values`` (``axis=None``) or along ``axis`` (e.g. per bootstrap row)."""
    x = np.asarray(values, dtype=np.float64)
    if axis is None:
        x, axis = x.reshape(-1), 0
    x = np.moveaxis(x, axis, -1)
    n = x.shape[-1]
    if n == 0:
        raise ValueError("the interquartile mean of no values is undefined")
    cut = int(0.25 * n)
    kept = np.sort(x, axis=-1)[..., cut:n - cut]
    out = kept.mean(axis=-1)
    return float(out) if out.ndim == 0 else out


def _matrix(scores: Any) -> np.ndarray:
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"scores must be a non-empty (runs, strata) matrix, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("scores must be finite")
    return x


def bootstrap_distribution(scores: Any, reps: int = BOOTSTRAP_REPS, seed: int = 0, resample_strata: bool = False,
                           statistic=None) -> np.ndarray:
    """``statistic`` (default: IQM) of ``reps`` stratified resamples of ``scores`` (runs, strata); shape (reps,).

    Resample ``r``: entry ``[i, j]`` is ``scores[I[r, i, j], J[r, j]]`` with ``I`` uniform over the
    runs and ``J[r, j] = j`` (stratified) or uniform over the strata (``resample_strata``).
    ``statistic`` maps a (reps, runs x strata) array to (reps,).
    """
    x = _matrix(scores)
    if reps < 1:
        raise ValueError("reps must be at least 1")
    runs, strata = x.shape
    rng = np.random.default_rng(seed)
    run_idx = rng.integers(0, runs, size=(reps, runs, strata))
    if resample_strata:
        stratum_idx = np.broadcast_to(rng.integers(0, strata, size=(reps, 1, strata)), run_idx.shape)
    else:
        stratum_idx = np.broadcast_to(np.arange(strata)[None, None, :], run_idx.shape)
    sample = x[run_idx, stratum_idx].reshape(reps, runs * strata)
    return (statistic or (lambda a: iqm(a, axis=1)))(sample)


def percentile_interval(distribution: Any, level: float = 0.95) -> tuple[float, float]:
    """The two-sided percentile interval of a bootstrap distribution."""
    if not 0.0 < level < 1.0:
        raise ValueError("level must be in (0, 1)")
    alpha = (1.0 - level) / 2.0
    lo, hi = np.percentile(np.asarray(distribution, dtype=np.float64), [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return float(lo), float(hi)


def aggregate(scores: Any, reps: int = BOOTSTRAP_REPS, seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """IQM of a (runs, strata) score matrix with its stratified (``ci95``) and theta-resampled
    (``ci95_thetas``) percentile intervals, and the plain ``mean``."""
    x = _matrix(scores)
    return {
        "iqm": iqm(x),
        "ci95": list(percentile_interval(bootstrap_distribution(x, reps, seed), level)),
        "ci95_thetas": list(percentile_interval(bootstrap_distribution(x, reps, seed, resample_strata=True), level)),
        "mean": float(x.mean()),
    }
