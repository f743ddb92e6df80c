"""MkDocs hook: the docs' reference tables, generated from go2bench's code at every build so they never drift.

A page asks for a table with a line ``<!-- table: NAME -->`` (NAME a key of :data:`TABLES`); the
line is replaced by the table. An unknown NAME fails the build. ``<!-- api: PACKAGE -->`` becomes
mkdocstrings' ``::: module`` blocks for the package and each of its public modules, so a module
added to the code appears in the API reference without editing the docs. Texts that only the docs need
(what an observation block or a reward term means) live here, keyed by the code's names: a block or
term added to the code without a text here fails the build too, instead of silently going missing.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^<!-- table: ([a-z_]+) -->$", re.M)
API_MARKER = re.compile(r"^<!-- api: (go2bench(?:\.[a-z_]+)*) -->$", re.M)

OBS_TEXT = {  # block -> (content, which ObsScales field scales it, or None)
    "base_ang_vel": ("base angular velocity, body frame (rad/s)", "ang_vel"),
    "projected_gravity": ("unit gravity direction in the body frame, (0, 0, -1) when level", None),
    "commands": ("command (vx, vy, yaw rate); zero in the velocity family", ("lin_vel", "lin_vel", "ang_vel")),
    "dof_pos": ("joint positions minus the default pose (rad)", "dof_pos"),
    "dof_vel": ("joint velocities (rad/s)", "dof_vel"),
    "last_action": ("last action (`obs_mode=\"full\"` only)", None),
    "task": ("theta normalised to [-1, 1] (`privileged=True` only; the privileged teacher's input)", None),
}
REWARD_TEXT = {
    "tracking_lin_vel": "exp(-‖cmd_xy − v_xy‖² / σ), body-frame velocity, σ = `tracking_sigma`",
    "tracking_ang_vel": "exp(-(cmd_yaw − ω_z)² / σ)",
    "lin_vel_z": "v_z²",
    "base_height": "(z − target)², target = the robot's `base_height_target`",
    "action_rate": "‖a_t − a_{t−1}‖²",
    "similar_to_default": "Σ |q − q_default|",
}


def _md(header: list[str], rows: list[list[object]], align: str | None = None) -> str:
    align = align or "-" * len(header)
    seps = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(seps) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _g(x: float) -> str:
    return f"{x:g}"


def envs() -> str:
    from go2bench.envs.registry import MAX_EPISODE_STEPS, TASKS
    from go2bench.envs.robots import ROBOTS
    from go2bench.envs.spaces import observation_dim

    rows = []
    for spec in TASKS.values():
        rd = ROBOTS[spec.robot]
        urdf = ("genesis-world asset `" + rd.urdf + "`" if not Path(rd.urdf).is_absolute()
                else f"shipped: `go2bench/envs/assets/{rd.name}/`")
        rows.append([f"`{spec.env_id}`", f"`{rd.name}`", spec.description, urdf,
                     f"{observation_dim(rd, 'noleak')} / {observation_dim(rd, 'full')}", rd.num_joints,
                     MAX_EPISODE_STEPS])
    return _md(["id", "robot", "description", "URDF", "obs dim (noleak / full)", "actions", "steps/episode"],
               rows, "lllllrr")


def observation() -> str:
    from go2bench.envs.robots import ROBOTS
    from go2bench.envs.spaces import observation_layout
    from go2bench.envs.walk_config import ObsScales

    scales = ObsScales()
    rows, i = [], 0
    layout = observation_layout(ROBOTS["go2"], "full", privileged_family="velocity")
    for name, size in layout:
        text, scale = OBS_TEXT[name]
        if scale is None:
            s = "1"
        elif isinstance(scale, tuple):
            s = "x (" + ", ".join(_g(getattr(scales, f)) for f in scale) + ")"
        else:
            s = f"x {_g(getattr(scales, scale))}"
        rows.append([f"{i}:{i + size}", f"`{name}`", text, s])
        i += size
    return _md(["index", "block", "content", "scale (`obs_scales`)"], rows) + (
        "\n\nIndices for a 12-joint robot; the `task` block is the velocity family's (its size is the "
        "family's theta size).")


def joints() -> str:
    from go2bench.envs.robots import JOINT_NAMES

    return "`" + ", ".join(n.removesuffix("_joint") for n in JOINT_NAMES) + "`"


def rewards() -> str:
    from go2bench.envs.walk_config import RewardScales, WalkConfig

    cfg = WalkConfig()
    rows = [[f"`{f.name}`", _g(getattr(cfg.rewards, f.name)), REWARD_TEXT[f.name]]
            for f in dataclasses.fields(RewardScales)]
    best = sum(w for w in dataclasses.asdict(cfg.rewards).values() if w > 0)
    return _md(["term", "weight", "value"], rows, "lrl") + (
        f"\n\nEach term is multiplied by its weight and by dt ({_g(cfg.dt)} s): a perfect episode of "
        f"{cfg.max_episode_steps} steps returns {_g(best)} x {_g(cfg.dt)} x {cfg.max_episode_steps} = "
        f"{_g(best * cfg.dt * cfg.max_episode_steps)}.")


def walk_config() -> str:
    from go2bench.envs.walk_config import WalkConfig

    rows = []

    def walk(obj, prefix: str) -> None:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.name in ("rewards", "obs_scales"):
                continue  # their own tables
            if dataclasses.is_dataclass(value):
                walk(value, f"{prefix}{f.name}.")
            else:
                rows.append([f"`{prefix}{f.name}`", f"`{value!r}`"])

    walk(WalkConfig(), "")
    return _md(["field", "default"], rows)


def robots() -> str:
    from go2bench.envs.robots import ROBOTS

    def fr(values) -> str:
        return " / ".join(_g(round(v, 3)) for v in values[:3])

    rows = []
    for rd in ROBOTS.values():
        lo, hi = rd.action_bounds()
        rows.append([f"`{rd.name}`", _g(rd.base_mass_kg), f"{_g(rd.kp)} / {_g(rd.kd)}", _g(rd.action_scale),
                     f"{_g(rd.base_init_height)} / {_g(rd.base_height_target)}", fr(rd.default_pose),
                     " / ".join(f"{_g(round(a, 2))}..{_g(round(b, 2))}" for a, b in
                                zip(rd.joint_lower[:3], rd.joint_upper[:3])),
                     fr(rd.torque_limits),
                     " / ".join(f"{a:.2f}..{b:.2f}" for a, b in zip(lo[:3], hi[:3]))])
    return _md(["robot", "base mass (kg)", "kp / kd", "action scale", "initial / target height (m)",
                "default pose, FR hip / thigh / calf (rad)", "FR joint limits (rad)", "FR torque limits (N·m)",
                "FR action bounds"], rows)


def families() -> str:
    from go2bench.envs.families import FAMILIES

    parts = []
    for fam in FAMILIES.values():
        rows = []
        for f in fam.fields:
            per = " x base mass" if f.per_base_mass else ""
            rows.append([f"`{f.name}`", f.unit or "-", f"[{_g(f.low)}, {_g(f.high)}]{per}", f"{_g(f.default)}{per}",
                         "yes" if f.integer else "", f.description])
        notes = [fam.description, "ranges differ per robot" if fam.robot_specific else "the same for every robot"]
        parts.append(f"**`{fam.name}`** ({'; '.join(notes)})\n\n"
                     + _md(["field", "unit", "range", "default", "integer", "meaning"], rows))
    return "\n\n".join(parts)


def suites() -> str:
    from go2bench.envs.families import FAMILIES
    from go2bench.envs.suites import CURRENT_SUITE, SUITE_SPECS

    rows = []
    for spec in SUITE_SPECS.values():
        g = spec.generator
        robots = "per robot" if FAMILIES[spec.family].robot_specific else "one list for every robot"
        current = " (current)" if CURRENT_SUITE.get(spec.family) == spec.name else ""
        rows.append([f"`{spec.name}`{current}", f"`{spec.family}`", spec.seed, g.train,
                     f"{g.test_interpolation} + {g.test_extrapolation}", robots,
                     ", ".join(sorted(g.extrapolation_bands))])
    return _md(["suite", "family", "seed", "train thetas", "test: interpolation + extrapolation", "thetas",
                "extrapolation axes"], rows, "lllrrll")


def robot_splits() -> str:
    from go2bench.envs.robot_split import CURRENT_ROBOT_SPLIT, ROBOT_SPLIT_SPECS

    rows = []
    for s in ROBOT_SPLIT_SPECS.values():
        current = " (current)" if s.name == CURRENT_ROBOT_SPLIT else ""
        rows.append([f"`{s.name}`{current}", ", ".join(f"`{r}`" for r in s.robots), f"`{s.group}`", s.episodes,
                     f"{s.num_envs} x {len(s.seeds)} seeds", s.max_episode_steps])
    return _md(["split", "robots (each held out once)", "shared task group", "episodes (K)", "envs per fold",
                "steps/episode"], rows, "lllrlr")


def model_presets() -> str:
    import torch

    from go2bench.vintix.config import MODEL_PRESETS, make_model_config
    from go2bench.vintix.model import VintixModel

    groups = {"go2_walking": {"obs_dim": 33, "act_dim": 12}, "minicheetah_walking": {"obs_dim": 33, "act_dim": 12}}
    rows = []
    for name in MODEL_PRESETS:
        cfg = make_model_config(name)
        with torch.device("meta"):
            n = VintixModel(cfg, groups).num_params()
        width = cfg.obs_emb_dim + cfg.act_emb_dim + cfg.rew_emb_dim
        rows.append([f"`{name}`", cfg.n_layers, cfg.n_heads, width, f"{cfg.mlp} {cfg.mlp_hidden}",
                     "yes" if cfg.qk_norm else "no", f"{n:,}"])
    return _md(["preset", "layers", "heads", "width", "MLP", "qk-norm", "parameters (2 groups, 33 obs, 12 act)"],
               rows, "lrrrllr")


def presets() -> str:
    from go2bench.pipeline.config import PRESETS

    rows = []
    for name, p in PRESETS.items():
        c, t, e = p.collect, p.train, p.eval
        norm = "this run's random/teacher" if e.measured_reference_scores else "shipped reference scores"
        stop = f", max {t.max_steps:,} steps" if t.max_steps else ""
        rows.append([f"`{name}`", p.backend, ", ".join(p.envs),
                     f"{c.num_histories:,} x {c.steps_per_history:,} steps, {c.max_episode_steps}-step episodes",
                     f"`{t.model}`, context {t.context_len}, batch {t.batch_size}, sparsity "
                     f"{t.trajectory_sparsity}, {t.epochs} epochs{stop}",
                     f"{e.num_envs} envs x {e.episodes} episodes, seeds {list(e.seeds)}; {norm}"])
    return _md(["preset", "backend", "envs", "collection per env", "Vintix", "evaluation"], rows)


def agents() -> str:
    from go2bench.agents.registry import BUILTIN_AGENTS

    return ", ".join(f"`{name}`" for name in BUILTIN_AGENTS)


def zoo() -> str:
    import json

    from go2bench.envs.registry import ZOO_DIR

    rows = []
    for card_path in sorted(ZOO_DIR.rglob("model_card.json")):
        card = json.loads(card_path.read_text())
        folder = card_path.parent.relative_to(ZOO_DIR).as_posix()
        files = ", ".join(sorted(p.name for p in card_path.parent.iterdir() if p.is_file()))
        vintix = (card_path.parent / "vintix.pt").exists()
        kind = ("Vintix (default task)" if folder == "vintix" else
                f"{card.get('family')} Vintix ({card_path.parent.name}: `--agent {card_path.parent.name}` "
                f"in the family)" if vintix else
                f"{card.get('family')} teacher, {'privileged' if card.get('privileged') else 'blind'}"
                if card.get("family") else "default-task teacher")
        rows.append([f"`{folder}/`", kind, card.get("obs_dim", ""), files])
    return _md(["folder (under `go2bench/zoo/`)", "what", "obs dim", "files"], rows)


def layers() -> str:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = data["tool"]["importlinter"]["contracts"][0]["layers"]
    rows = []
    for name in reversed(names):
        init = ROOT / Path(*name.split(".")) / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        rows.append([f"`{name.split('.')[-1]}/`", doc.split("\n\n")[0].replace("\n", " ")])
    return _md(["layer (lowest first)", "what it holds (its package docstring)"], rows)


def cli() -> str:
    import click

    from go2bench.cli import main

    parts = []

    def visit(cmd: click.Command, path: list[str], parent: click.Context | None) -> None:
        ctx = click.Context(cmd, info_name=path[-1], parent=parent, terminal_width=100, max_content_width=100)
        if len(path) > 1:
            parts.append(f"### `{' '.join(path)}`\n\n```text\n{cmd.get_help(ctx)}\n```")
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                visit(cmd.get_command(ctx, name), path + [name], ctx)

    visit(main, ["go2bench"], None)
    root = click.Context(main, info_name="go2bench", terminal_width=100, max_content_width=100)
    return f"```text\n{main.get_help(root)}\n```\n\n" + "\n\n".join(parts)


TABLES = {f.__name__: f for f in (envs, observation, joints, rewards, walk_config, robots, families, suites, robot_splits,
                                  model_presets, presets, agents, zoo, layers, cli)}


def render(name: str, where: str) -> str:
    if name not in TABLES:
        raise KeyError(f"{where}: unknown table {name!r}; known: {sorted(TABLES)}")
    return TABLES[name]()


def api(package: str) -> str:
    folder = ROOT / Path(*package.split("."))
    if not (folder / "__init__.py").exists():
        raise KeyError(f"{package} is not a package of {ROOT}")
    modules = [f"{package}.{p.stem}" for p in sorted(folder.glob("*.py")) if not p.stem.startswith("_")]
    blocks = [f"::: {package}\n    options:\n      members: false"] + [f"::: {m}" for m in modules]
    return "\n\n".join(blocks)


def on_page_markdown(markdown: str, page, config, files, **kwargs) -> str:
    markdown = API_MARKER.sub(lambda m: api(m.group(1)), markdown)
    return MARKER.sub(lambda m: render(m.group(1), page.file.src_uri), markdown)
