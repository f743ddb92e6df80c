"""Scenes without a camera load each robot's URDF without its <visual> elements (envs.collision_urdf).

The file checks read the XML back with ElementTree and compare it with the source element by element;
the slow test builds every robot twice, from the full URDF and from the copy, and requires the same
bodies and a bit-identical 60-step rollout.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch

from go2bench.envs import collision_urdf
from go2bench.envs.registry import TASKS, robot_for_env
from go2bench.envs.robots import ROBOTS

SMALL = """<robot name="r">
  <material name="grey"><color rgba="0.5 0.5 0.5 1"/></material>
  <link name="base">
    <inertial><mass value="2.0"/><inertia ixx="1" ixy="0" ixz="0" iyy="1" iyz="0" izz="1"/></inertial>
    <visual><geometry><mesh filename="../meshes/base.dae"/></geometry></visual>
    <visual><geometry><box size="1 1 1"/></geometry></visual>
    <collision><geometry><mesh filename="../meshes/base_col.stl"/></geometry></collision>
  </link>
  <link name="leg">
    <collision><geometry><sphere radius="0.1"/></geometry></collision>
  </link>
  <joint name="j" type="revolute"><parent link="base"/><child link="leg"/>
    <axis xyz="0 1 0"/><limit lower="-1" upper="1" effort="5" velocity="3"/></joint>
</robot>"""


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GO2BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "urdf"


def _without_visuals(root: ET.Element) -> list[str]:
    """Every element but <visual> subtrees, serialised in document order, mesh names reduced to their base name."""
    out = []

    def walk(e: ET.Element) -> None:
        if e.tag == "visual":
            return
        attrib = dict(e.attrib)
        if e.tag == "mesh":
            attrib["filename"] = Path(attrib["filename"]).name
        out.append(f"{e.tag} {sorted(attrib.items())} {(e.text or '').strip()}")
        for c in e:
            walk(c)

    walk(root)
    return out


def test_strip_removes_visuals_keeps_the_rest_and_makes_mesh_paths_absolute(tmp_path):
    src_dir = tmp_path / "robot" / "urdf"
    out = ET.fromstring(collision_urdf.strip_visuals(SMALL, src_dir))
    assert out.findall(".//visual") == []
    assert out.find("material").get("name") == "grey"  # robot-level materials stay
    assert [m.get("filename") for m in out.iter("mesh")] == [str(src_dir / "../meshes/base_col.stl")]
    assert out.find("link/inertial/mass").get("value") == "2.0"
    assert out.find("joint/limit").attrib == {"lower": "-1", "upper": "1", "effort": "5", "velocity": "3"}
    assert _without_visuals(out) == _without_visuals(ET.fromstring(SMALL))


def test_nothing_to_strip_or_package_paths_keep_the_source():
    no_visual = SMALL.replace("<visual>", "<!--").replace("</visual>", "-->")
    assert collision_urdf.strip_visuals(no_visual, Path("/x")) is None
    assert collision_urdf.strip_visuals(SMALL.replace("../meshes/base_col", "package://r/base_col"), Path("/x")) is None


def test_copy_is_cached_by_content(tmp_path, cache):
    src = tmp_path / "r.urdf"
    src.write_text(SMALL)
    first = collision_urdf.collision_only(str(src))
    assert Path(first).parent == cache and Path(first).read_text() == collision_urdf.strip_visuals(SMALL, tmp_path)
    assert collision_urdf.collision_only(str(src)) == first  # reused
    assert sorted(p.name for p in cache.iterdir()) == [Path(first).name]  # no temporary files left
    src.write_text(SMALL.replace('value="2.0"', 'value="3.0"'))
    second = collision_urdf.collision_only(str(src))
    assert second != first and 'value="3.0"' in Path(second).read_text()


@pytest.mark.parametrize("robot", sorted(ROBOTS))
def test_every_robot_copy_has_its_collisions_inertials_and_joints(robot, cache):
    source = collision_urdf.resolve(ROBOTS[robot].urdf)
    copy = Path(collision_urdf.collision_only(ROBOTS[robot].urdf))
    assert copy.parent == cache
    full, stripped = ET.parse(source).getroot(), ET.parse(copy).getroot()
    assert full.findall(".//visual") and stripped.findall(".//visual") == []
    assert _without_visuals(stripped) == _without_visuals(full)
    for mesh in stripped.iter("mesh"):  # collision meshes still found from the cache directory
        assert Path(mesh.get("filename")).is_file()


ENV_OF = {robot_for_env(env_id): env_id for env_id in TASKS}


def _rollout(env_id: str, steps: int = 60) -> tuple[tuple[int, ...], torch.Tensor]:
    from go2bench.envs.walk_sim import make_walk_sim

    sim = make_walk_sim(env_id, num_envs=2)
    try:
        r = sim.robot
        counts = (r.n_links, r.n_joints, r.n_dofs, r.n_geoms, r.n_vgeoms)
        g = torch.Generator().manual_seed(3)
        rows = [sim.reset()]
        for _ in range(steps):
            a = torch.rand((2, sim.action_low.shape[0]), generator=g) * 2.0 - 1.0
            res = sim.step(a)
            rows += [res.obs, res.reward[:, None], r.get_dofs_position(), r.get_pos()]
        return counts, torch.cat([x.reshape(2, -1).cpu() for x in rows], dim=1)
    finally:
        sim.close()


@pytest.mark.slow
@pytest.mark.parametrize("robot", sorted(ROBOTS))
def test_collision_only_scene_simulates_exactly_as_the_full_urdf(robot, monkeypatch, cache):
    counts, states = _rollout(ENV_OF[robot])
    assert any(p.name.startswith(Path(ROBOTS[robot].urdf).stem) for p in cache.iterdir())  # the copy was used
    monkeypatch.setattr(collision_urdf, "collision_only", lambda urdf: urdf)  # the full URDF, as before
    full_counts, full_states = _rollout(ENV_OF[robot])
    assert counts == full_counts and counts[3] > 0 and counts[4] == 0
    assert torch.isfinite(states).all()
    assert (states - full_states).abs().max().item() == 0.0
