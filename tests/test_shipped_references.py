"""Reference returns shipped in the zoo (measured in the GPU family runs) are used instead of a measurement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from go2bench.envs.registry import task_spec
from go2bench.envs.suites import load_suite
from go2bench.eval import family_reference as fr

SHIPPED = sorted(Path(fr.__file__).resolve().parents[1].glob("zoo/*/*/references/*.json"))
ROBOT = {"Go2Walk-v0": "go2", "MiniCheetahWalk-v0": "mini_cheetah"}


def test_the_zoo_ships_reference_files_for_the_gpu_family_runs():
    assert {(p.parts[-4], p.parts[-3]) for p in SHIPPED} >= {("Go2Walk-v0", "velocity"), ("Go2Walk-v0", "dynamics"),
                                                            ("MiniCheetahWalk-v0", "velocity")}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parts[-4]}-{p.parts[-3]}")
def test_shipped_references_cover_every_test_theta_without_a_measurement(path, tmp_path, monkeypatch):
    stored = json.loads(path.read_text())  # read by json, not by the module under test
    env, family, steps = stored["env"], stored["family"], stored["max_episode_steps"]
    # the file is named like a cache entry of the CURRENT default WalkConfig: a changed default makes it stale
    assert stored["walk_config_sha256"] == fr.walk_config_hash(None), f"{path}: measured with another WalkConfig"
    assert path.name == fr.cache_path("", env, stored["suite"], steps, fr.walk_config_hash(None)).name
    assert path.parent == task_spec(env).zoo_dir / family / "references"
    suite = load_suite(family, ROBOT[env])
    ids, specs = [t.id for t in suite.test], [("test", t.index) for t in suite.test]
    assert set(stored["returns"]) == set(ids)

    def no_measurement(*a, **k):
        raise AssertionError("measured although the zoo ships these references")

    monkeypatch.setattr(fr, "_measure", no_measurement)
    refs = fr.resolve_family_references(env, family, stored["suite"], ids, specs, steps, cache_dir=tmp_path)
    rnd, priv = refs.arrays(ids)
    assert rnd.tolist() == [stored["returns"][t]["random"] for t in ids]
    assert priv.tolist() == [stored["returns"][t]["privileged"] for t in ids]
    assert (priv > rnd).all()  # the privileged teacher walks; the random agent does not
    assert refs.sources[ids[0]]["privileged"] == f"go2bench/zoo/{env}/{family}/references/{path.name}"
    # a user's cache entry comes first; another episode length does not use the shipped file
    cache = fr.cache_path(tmp_path, env, stored["suite"], steps, fr.walk_config_hash(None))
    cache.parent.mkdir(parents=True)
    cache.write_text(json.dumps({"returns": {ids[0]: {"random": -1.0, "privileged": 2.0}}}))
    mine = fr.resolve_family_references(env, family, stored["suite"], ids, specs, steps, cache_dir=tmp_path)
    assert mine.returns[ids[0]] == {"random": -1.0, "privileged": 2.0} and mine.sources[ids[1]] == refs.sources[ids[1]]
    with pytest.raises(ValueError, match="no reference returns"):
        fr.resolve_family_references(env, family, stored["suite"], ids, specs, steps + 1, cache_dir=None, compute=False)
