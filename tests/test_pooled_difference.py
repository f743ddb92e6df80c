"""Two recipes' pooled scores compared (go2bench.eval.pooled.recipe_difference): runs drawn per recipe, thetas and
evaluation seeds shared; checked by hand, against an unpaired bootstrap written here, by symmetry, against
paired_difference, and its refusals. Results files come from the real builder (test_pooled_leaderboard's helper)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import trim_mean
from test_pooled_leaderboard import family_file

from go2bench.eval.leaderboard import load_result
from go2bench.eval.pooled import PoolError, metric_matrices, paired_difference, recipe_difference, trial_scores


def recipe(folder, agent: str, runs) -> list[dict]:
    """One results dict per run of ``runs`` (runs, eval seeds, thetas, episodes), each its own model."""
    return [load_result(family_file(folder / f"r{i}", f"{agent}:runs/{folder.name}{i}/final.pt", N))
            for i, N in enumerate(runs)]


def test_constant_recipes_differ_by_their_gap_with_no_width(tmp_path):
    """Every trial of A scores 0.7 and of B 0.4: any replicate pools 0.7s against 0.4s, so 0.3 exactly, zero width."""
    a = recipe(tmp_path / "a", "vintix", np.full((3, 2, 4, 3), 0.7))
    b = recipe(tmp_path / "b", "vintix-episodic", np.full((1, 2, 4, 3), 0.4))  # one run, another agent
    d = recipe_difference(a, b, reps=300)
    assert d["value"] == pytest.approx(0.3, abs=1e-12) and d["ci95_pooled"] == pytest.approx([0.3, 0.3], abs=1e-12)
    assert d["runs"] == [3, 1] and d["metric"] == "final"
    z = recipe_difference(a, b, metric="zero_shot", reps=50)
    assert z["value"] == pytest.approx(0.3, abs=1e-12)


def _unpaired_interval(x: np.ndarray, y: np.ndarray, reps: int, seed: int) -> list[float]:
    """The interval when each recipe resamples its own runs, thetas and seeds (nothing shared)."""
    rng = np.random.default_rng(seed)

    def pooled(X):
        S, E, J = X.shape
        runs = rng.integers(0, S, size=(reps, S))[:, :, None, None]
        thetas = rng.integers(0, J, size=(reps, J))[:, None, None, :]
        seeds = rng.integers(0, E, size=(reps, S, E, J))
        return trim_mean(X[runs, seeds, thetas].reshape(reps, -1), 0.25, axis=1)

    return list(np.percentile(pooled(x) - pooled(y), [2.5, 97.5]))


def test_sharing_the_thetas_removes_their_difficulty_from_the_interval(tmp_path):
    """Each theta has a difficulty shared by both recipes (spread 0.6) and A is 0.3 above B on every theta, up to
    small run offsets and trial noise: resampling thetas once for both keeps the interval around 0.3 narrow;
    resampling them per recipe lets the difficulty in (its interval many times wider)."""
    rng = np.random.default_rng(7)
    difficulty = rng.uniform(0.0, 0.6, size=32)

    def runs(offsets, gap):
        return np.stack([np.repeat((difficulty + gap + o + rng.normal(0, 0.01, size=(2, 32)))[..., None], 3, axis=-1)
                         for o in offsets])

    A, B = runs([-0.01, 0.0, 0.01], 0.3), runs([-0.005, 0.005], 0.0)
    d = recipe_difference(recipe(tmp_path / "a", "vintix", A), recipe(tmp_path / "b", "vintix", B), reps=1000)
    lo, hi = d["ci95_pooled"]
    assert lo < 0.3 < hi and abs(d["value"] - 0.3) < 0.02
    ulo, uhi = _unpaired_interval(A[..., -1], B[..., -1], 1000, 0)
    assert ulo < 0.3 < uhi
    assert (hi - lo) * 4 < uhi - ulo, ((lo, hi), (ulo, uhi))


def test_swapping_the_recipes_negates_the_point_and_mirrors_the_interval(tmp_path):
    rng = np.random.default_rng(3)
    a = recipe(tmp_path / "a", "vintix", rng.uniform(0, 1, size=(3, 2, 5, 4)))
    b = recipe(tmp_path / "b", "vintix", rng.uniform(0, 1, size=(2, 2, 5, 4)))
    ab, ba = recipe_difference(a, b, reps=400, seed=5), recipe_difference(b, a, reps=400, seed=5)
    assert ba["value"] == pytest.approx(-ab["value"], abs=1e-12) and ab["value"] != 0
    assert ba["ci95_pooled"] == pytest.approx([-ab["ci95_pooled"][1], -ab["ci95_pooled"][0]], abs=1e-12)
    assert ba["runs"] == [2, 3] and ab["ci95_pooled"][0] < ab["value"] < ab["ci95_pooled"][1]


def test_recipes_of_other_protocols_are_refused_naming_the_field(tmp_path):
    x = np.full((1, 2, 3, 3), 0.5)
    a = recipe(tmp_path / "a", "vintix", np.concatenate([x, x]))
    thetas = [load_result(family_file(tmp_path / "t", "vintix:runs/t/final.pt", x[0], first_theta=1))]
    episodes = recipe(tmp_path / "k", "vintix", np.full((1, 2, 3, 4), 0.5))
    with pytest.raises(PoolError, match=r"compare a - b: .* differs from .* in family.tasks \(the thetas\): only "
                                        "recipes on one env, family, split and protocol compare"):
        recipe_difference(a, thetas)
    with pytest.raises(PoolError, match=r"compare base - k: .* in family.episodes \(3 vs 4\)"):
        recipe_difference(a, episodes, names=("base", "k"))
    mixed = [a[0], episodes[0]]  # a recipe's own runs must share one protocol too
    with pytest.raises(PoolError, match=r"pool a: .* in family.episodes"):
        recipe_difference(mixed, a)
    with pytest.raises(PoolError, match="pool b: no results files"):
        recipe_difference(a, [])
    with pytest.raises(ValueError, match="metric 'best'"):
        recipe_difference(a, a, metric="best")


def test_one_run_each_is_paired_difference(tmp_path):
    """One run per recipe: the run draws are trivial and the theta and seed draws are paired_difference's."""
    rng = np.random.default_rng(11)
    a = recipe(tmp_path / "a", "vintix", rng.uniform(0, 1, size=(1, 2, 6, 4)))
    b = recipe(tmp_path / "b", "teacher-blind", rng.uniform(0, 1, size=(1, 2, 6, 4)))
    x, y = (metric_matrices(np.asarray(trial_scores(r[0])["normalized"])[None]) for r in (a, b))
    for metric in ("final", "rise"):
        got = recipe_difference(a, b, metric=metric, reps=500, seed=2)
        want = paired_difference(x[metric], y[metric], reps=500, seed=2)
        assert got["value"] == want["value"] and got["ci95_pooled"] == want["ci95_pooled"]
