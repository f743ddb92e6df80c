"""Task suites: fixed, versioned train and test thetas of each family, per robot where ranges depend on it.

A suite file (``go2bench/suites/<name>.yaml``, e.g. ``velocity-v0.yaml``) lists every theta
explicitly, together with the seed and generator parameters that produced it;
:func:`generate_suite` regenerates exactly the same text (tests check it), so anyone can verify or
rebuild the tasks. A changed set of tasks is a new version (``-v1``), never an edit.

File format (YAML, no aliases)::

    suite: velocity-v0            # the file's name
    family: velocity              # a key of go2bench.envs.families.FAMILIES
    seed: 14                      # generate_suite(suite, seed) gives this file
    fields: [lin_vel_x, ...]      # the family's theta layout, in order (checked against the code)
    generator: {...}              # GeneratorParams: counts, train ranges, extrapolation bands
    splits:                       # families whose ranges do not depend on the robot
      train: [{lin_vel_x: 0.512, ...}, ...]            # 128 thetas
      test: [{bin: interpolation, lin_vel_x: ...}, ...]  # 32 thetas, each with its bin
    robots:                       # instead of splits, for robot-specific families (dynamics, faults)
      go2: {base_mass_kg: 6.923, train: [...], test: [...]}

Test bins: ``interpolation`` (drawn like the train thetas, inside the train ranges) and
``extrapolation:<axis>`` (one axis drawn in a band outside the train ranges, the others as for
interpolation; axis is a field name or ``weak_leg``). Train and test thetas are disjoint.
Relative ranges (``added_mass``) are in units of the robot's base mass in the generator block and
in kg in the thetas.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from go2bench.core.config import ConfigError, from_dict, read_yaml
from go2bench.envs import streams
from go2bench.envs.families import FAMILIES, OFFSET_JOINTS, Family, ThetaLayout, get_family
from go2bench.envs.robots import LEGS, ROBOTS

SUITES_DIR = Path(__file__).resolve().parent.parent / "suites"
SPLITS = ("train", "test")


@dataclass(frozen=True)
class GeneratorParams:
    """How a suite's thetas are drawn (recorded in the file; ranges of relative fields in base-mass units)."""

    train: int  # number of train thetas
    test_interpolation: int
    test_extrapolation: int
    decimals: int  # thetas are rounded (inwards) to this many decimals
    train_ranges: dict[str, tuple[float, float]]  # per field; integer fields draw whole numbers
    extrapolation_bands: dict[str, list[tuple[float, float]]]  # per axis, bands outside the train ranges
    weak_leg_probability: float = 0.0  # chance that one leg's strength is drawn from weak_leg_range
    weak_leg_range: tuple[float, float] | None = None
    flip_probability: float | None = None  # faults: chance that one leg (uniform) is reversed (flip_<leg> 1)


_OPTIONAL = ("flip_probability",)  # generator keys that suite files of other families lack (written only when set)


@dataclass(frozen=True)
class SuiteSpec:
    """A suite's name, family, seed and generator parameters: everything generate_suite needs."""

    name: str
    family: str
    seed: int
    generator: GeneratorParams


_BANDS = [(-0.5, -0.35), (0.35, 0.5)]
SUITE_SPECS: dict[str, SuiteSpec] = {s.name: s for s in (
    SuiteSpec("velocity-v0", "velocity", 14, GeneratorParams(
        train=128, test_interpolation=16, test_extrapolation=16, decimals=3,
        train_ranges={"lin_vel_x": (0.1, 0.8), "lin_vel_y": (-0.35, 0.35), "ang_vel_yaw": (-0.35, 0.35)},
        extrapolation_bands={"lin_vel_x": [(0.8, 1.0), (0.0, 0.1)], "lin_vel_y": list(_BANDS),
                             "ang_vel_yaw": list(_BANDS)})),
    SuiteSpec("dynamics-v0", "dynamics", 14, GeneratorParams(
        train=128, test_interpolation=16, test_extrapolation=16, decimals=3,
        train_ranges={"added_mass": (-0.1, 0.35), "friction": (0.35, 1.25),
                      **{f"strength_{leg}": (0.85, 1.1) for leg in LEGS}, "latency_steps": (0.0, 2.0)},
        extrapolation_bands={"added_mass": [(0.35, 0.5)], "friction": [(0.2, 0.35)], "weak_leg": [(0.4, 0.55)]},
        weak_leg_probability=0.5, weak_leg_range=(0.55, 0.85))),
    # v1: wide enough that knowing theta matters (v0's blind teachers were within 0.2 of the privileged)
    SuiteSpec("dynamics-v1", "dynamics", 15, GeneratorParams(
        train=128, test_interpolation=16, test_extrapolation=16, decimals=3,
        train_ranges={"added_mass": (-0.2, 0.8), "friction": (0.2, 1.25),
                      **{f"strength_{leg}": (0.8, 1.1) for leg in LEGS}, "latency_steps": (0.0, 2.0)},
        extrapolation_bands={"added_mass": [(0.8, 1.0)], "friction": [(0.1, 0.2)], "weak_leg": [(0.1, 0.25)]},
        weak_leg_probability=0.75, weak_leg_range=(0.25, 0.6))),
    # dynamics-v1's ranges + faults a reactive policy cannot be robust to (a reversed leg) or must calibrate for
    # (joint zero offsets): on dynamics-v1 a blind teacher scored 0.98 of the privileged one on Mini Cheetah
    SuiteSpec("faults-v0", "faults", 16, GeneratorParams(
        train=128, test_interpolation=16, test_extrapolation=16, decimals=3,
        train_ranges={"added_mass": (-0.2, 0.8), "friction": (0.2, 1.25),
                      **{f"strength_{leg}": (0.8, 1.1) for leg in LEGS}, "latency_steps": (0.0, 2.0),
                      **{f"offset_{j}_{leg}": (-0.25, 0.25) for j in OFFSET_JOINTS for leg in LEGS},
                      **{f"flip_{leg}": (0.0, 0.0) for leg in LEGS}},
        extrapolation_bands={"added_mass": [(0.8, 1.0)], "friction": [(0.1, 0.2)], "weak_leg": [(0.1, 0.25)],
                             **{n: [(-0.4, -0.3), (0.3, 0.4)] for n in ("offset_thigh_FL", "offset_calf_RR")}},
        weak_leg_probability=0.5, weak_leg_range=(0.25, 0.6), flip_probability=0.5)),
)}
CURRENT_SUITE = {"velocity": "velocity-v0", "dynamics": "dynamics-v1", "faults": "faults-v0"}  # load_suite's default


@dataclass(frozen=True)
class SuiteTask:
    """One theta of a suite: its ``id``, split, index, bin and ``theta`` mapping.

    ``id`` is "<suite>/<split>/<index>" ("velocity-v0/test/3"), with the robot for robot-specific
    families ("dynamics-v0/go2/test/3"): a key for per-task reference returns.
    """

    id: str
    split: str
    index: int
    bin: str  # "train", "interpolation" or "extrapolation:<axis>"
    items: tuple[tuple[str, float], ...]  # (name, value) in layout order; immutable, picklable

    @property
    def theta(self) -> dict[str, float]:
        """``{name: value}`` (a fresh dict each time: the suite itself stays immutable)."""
        return dict(self.items)

    def vector(self, layout: ThetaLayout) -> tuple[float, ...]:
        return layout.vector(self.theta, self.id, complete=True)


@dataclass(frozen=True)
class Suite:
    """The train and test thetas of one family for one robot."""

    name: str
    family: str
    robot: str
    seed: int
    train: tuple[SuiteTask, ...]
    test: tuple[SuiteTask, ...]

    def split(self, split: str) -> tuple[SuiteTask, ...]:
        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r} of suite {self.name}; known splits: {list(SPLITS)}")
        return getattr(self, split)

    def specs(self, split: str) -> list[tuple[str, int]]:
        """``[(split, 0), (split, 1), ...]``: every task of a split, as the envs' ``tasks=`` take them."""
        return [(split, t.index) for t in self.split(split)]


# ------------------------------------------------------------------------------ loading
@dataclass(frozen=True)
class _Splits:
    train: list[dict[str, Any]]
    test: list[dict[str, Any]]
    base_mass_kg: float | None = None


@dataclass(frozen=True)
class _SuiteFile:
    suite: str
    family: str
    seed: int
    fields: list[str]
    generator: GeneratorParams
    splits: _Splits | None = None
    robots: dict[str, _Splits] | None = None


def load_suite(family: str | Family, robot: str, name: str | None = None, path: str | Path | None = None) -> Suite:
    """The suite of ``family`` for ``robot`` (default: the family's current suite file, e.g. velocity-v0).

    Every problem (unknown keys, a theta out of the family's range, NaN, a missing robot, a base
    mass that differs from the robot's, train and test sharing a theta) is one ConfigError.
    """
    fam = get_family(family)
    name = CURRENT_SUITE.get(fam.name) if name is None and path is None else name
    if path is None and name is None:
        raise ConfigError(f"the {fam.name} family has no suite file yet")
    path = Path(path) if path is not None else SUITES_DIR / f"{name}.yaml"
    return _load(fam.name, robot, str(path), _stamp(path))


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What the caches key a file on besides its path, so that a rewritten file is read again."""
    try:
        st = path.stat()
    except OSError:
        return None  # read_yaml names the problem
    return st.st_mtime_ns, st.st_size, st.st_ino


@functools.lru_cache(maxsize=16)
def _parse(path: str, stamp: tuple[int, int, int] | None) -> _SuiteFile:
    """A suite file, read and type-checked once per version of it (every robot's suite comes from one file)."""
    return from_dict(_SuiteFile, read_yaml(path), path)


@functools.lru_cache(maxsize=32)
def _load(family: str, robot: str, path: str, stamp: tuple[int, int, int] | None) -> Suite:
    data = _parse(path, stamp)
    if data.family != family:
        raise ConfigError(f"{path}: a suite of the {data.family} family, not {family}")
    fam = FAMILIES[family]
    layout = fam.layout(robot)
    if list(data.fields) != list(layout.names):
        raise ConfigError(f"{path}: fields {data.fields} differ from the {family} layout {list(layout.names)}")
    if fam.robot_specific:
        if not data.robots or robot not in data.robots:
            raise ConfigError(f"{path}: no tasks for robot {robot!r}; it has {sorted(data.robots or {})}")
        block = data.robots[robot]
        if block.base_mass_kg is None or abs(block.base_mass_kg - ROBOTS[robot].base_mass_kg) > 1e-9:
            raise ConfigError(f"{path}: {robot}'s base_mass_kg {block.base_mass_kg} differs from the robot "
                              f"description's {ROBOTS[robot].base_mass_kg}; regenerate the suite as a new version")
    else:
        if data.splits is None:
            raise ConfigError(f"{path}: expected 'splits' (the {family} family is the same for every robot)")
        block = data.splits
    tasks: dict[str, list[SuiteTask]] = {}
    for split in SPLITS:
        tasks[split] = []
        for i, entry in enumerate(getattr(block, split)):
            where = f"{path}: {split}[{i}]"
            entry = dict(entry)
            bin_ = entry.pop("bin", "train") if split == "test" else "train"
            if split == "test" and not (bin_ == "interpolation" or str(bin_).startswith("extrapolation:")):
                raise ConfigError(f"{where}.bin: expected 'interpolation' or 'extrapolation:<axis>', got {bin_!r}")
            vec = layout.vector(entry, where, complete=True)
            prefix = f"{data.suite}/{robot}" if fam.robot_specific else data.suite
            tasks[split].append(SuiteTask(f"{prefix}/{split}/{i}", split, i, bin_,
                                          tuple(layout.as_dict(vec).items())))
    seen = {t.items for t in tasks["train"]}
    clash = [t.id for t in tasks["test"] if t.items in seen]
    dupes = len(seen) != len(tasks["train"]) or len({t.items for t in tasks["test"]}) != len(tasks["test"])
    if clash or dupes:
        raise ConfigError(f"{path}: train and test thetas must be distinct and disjoint (shared: {clash[:5]})")
    return Suite(data.suite, family, robot, data.seed, tuple(tasks["train"]), tuple(tasks["test"]))


# ------------------------------------------------------------------------------ generation
def generate_suite(name: str, seed: int | None = None) -> str:
    """The text of suite file ``name`` drawn with ``seed`` (default: the suite's own seed).

    Deterministic on every platform (counter-based integer hashing, :mod:`go2bench.envs.streams`),
    so ``generate_suite("velocity-v0", 14)`` equals the shipped ``velocity-v0.yaml`` byte for byte.
    """
    if name not in SUITE_SPECS:
        raise ConfigError(f"unknown suite {name!r}; known suites: {sorted(SUITE_SPECS)}")
    spec = SUITE_SPECS[name]
    seed = spec.seed if seed is None else int(seed)
    fam = FAMILIES[spec.family]
    g = spec.generator
    names = [f.name for f in fam.fields]
    lines = [f"# go2bench task suite {name}: fixed train and test thetas of the {fam.name} family.",
             f"# Generated by go2bench.envs.suites.generate_suite({name!r}, {seed}); do not edit by hand",
             "# (the tests regenerate it and compare). Changed tasks are a new version of the suite.",
             f"suite: {name}", f"family: {fam.name}", f"seed: {seed}", f"fields: [{', '.join(names)}]",
             "generator:", *[f"  {k}: {_flow(v)}" for k, v in dataclasses.asdict(g).items()
                             if v is not None or k not in _OPTIONAL]]
    robots = list(ROBOTS) if fam.robot_specific else [None]
    lines.append("robots:" if fam.robot_specific else "splits:")
    for robot in robots:
        ind = "  " if robot is None else "    "
        if robot is not None:
            lines += [f"  {robot}:", f"    base_mass_kg: {ROBOTS[robot].base_mass_kg!r}"]
        layout = fam.layout(robot or next(iter(ROBOTS)))
        train, test = _draw_splits(spec, seed, layout, robot)
        lines.append(f"{ind}train:")
        lines += [f"{ind}- {_entry(layout, theta)}" for theta in train]
        lines.append(f"{ind}test:")
        lines += [f"{ind}- {_entry(layout, theta, bin_)}" for bin_, theta in test]
    return "\n".join(lines) + "\n"


def write_suite(name: str, seed: int | None = None, path: str | Path | None = None) -> Path:
    """Write :func:`generate_suite` to ``path`` (default: the shipped file); returns the path."""
    path = Path(path) if path is not None else SUITES_DIR / f"{name}.yaml"
    path.write_text(generate_suite(name, seed))
    _parse.cache_clear()
    _load.cache_clear()
    return path


def _draw_splits(spec: SuiteSpec, seed: int, layout: ThetaLayout, robot: str | None):
    g = spec.generator
    root = streams.chain(streams.key(seed, streams.SUITE), _code(spec.name), _code(robot or ""))
    seen: set[tuple[float, ...]] = set()
    out: dict[str, list] = {"train": [], "test": []}
    plan = [("train", "train", i) for i in range(g.train)]
    plan += [("test", "interpolation", i) for i in range(g.test_interpolation)]
    axes = list(g.extrapolation_bands)
    plan += [("test", f"extrapolation:{axes[i % len(axes)]}", i) for i in range(g.test_extrapolation)]
    for split, bin_, i in plan:
        for attempt in range(1000):  # a repeat of an earlier theta (after rounding) is drawn again
            h = streams.chain(root, _code(bin_), i, attempt)
            theta = _draw(g, layout, bin_, lambda slot: streams.to_unit(streams.chain(h, slot)))
            if theta not in seen:
                break
        seen.add(theta)
        out[split].append(theta if split == "train" else (bin_, theta))
    return out["train"], out["test"]


def _draw(g: GeneratorParams, layout: ThetaLayout, bin_: str, u) -> tuple[float, ...]:
    """One theta; ``u(slot)`` gives the uniform of a numbered slot."""
    values = {}
    base_mass = ROBOTS[layout.robot].base_mass_kg
    scale = {f.name: (base_mass if f.per_base_mass else 1.0) for f in FAMILIES[layout.family].fields}
    for k, (name, integer) in enumerate(zip(layout.names, layout.integer)):
        lo, hi = g.train_ranges[name]
        slot = k if k < 10 else 1000 + k  # slots 10-13 are the weak-leg redraws (the faults fields reach 10+)
        values[name] = (lo + int(u(slot) * (hi - lo + 1))) if integer else lo + (hi - lo) * u(slot)
    legs = [n for n in layout.names if n.startswith("strength_")]
    if legs and g.weak_leg_range is not None and u(100) < g.weak_leg_probability:
        values[legs[int(u(101) * len(legs))]] = g.weak_leg_range[0] + (g.weak_leg_range[1] - g.weak_leg_range[0]) * u(102)
    if g.flip_probability is not None and u(110) < g.flip_probability:
        values[f"flip_{LEGS[int(u(111) * len(LEGS))]}"] = 1.0
    if bin_.startswith("extrapolation:"):
        axis = bin_.split(":", 1)[1]
        bands = g.extrapolation_bands[axis]
        lo, hi = bands[int(u(200) * len(bands))]
        target = legs[int(u(201) * len(legs))] if axis == "weak_leg" else axis
        if axis == "weak_leg":  # exactly one weak leg, weaker than any train theta's
            values.update({n: g.train_ranges[n][0] + (g.train_ranges[n][1] - g.train_ranges[n][0]) * u(10 + j)
                           for j, n in enumerate(legs)})
        values[target] = lo + (hi - lo) * u(202)
    return tuple(_round_inward(values[n] * scale[n], lo, hi, g.decimals, integer)
                 for n, lo, hi, integer in zip(layout.names, layout.low, layout.high, layout.integer))


def _round_inward(v: float, lo: float, hi: float, decimals: int, integer: bool) -> float:
    if integer:
        return float(int(v))
    step = 10.0 ** -decimals
    r = round(v, decimals)
    if r < lo:
        r = round(r + step, decimals)
    if r > hi:
        r = round(r - step, decimals)
    return r + 0.0  # no -0.0


def _code(text: str) -> int:
    return streams.chain(0, *text.encode())


def _entry(layout: ThetaLayout, theta: tuple[float, ...], bin_: str | None = None) -> str:
    parts = [] if bin_ is None else [f"bin: '{bin_}'"]
    parts += [f"{n}: {int(v) if i else _num(v)}" for n, v, i in zip(layout.names, theta, layout.integer)]
    return "{" + ", ".join(parts) + "}"


def _num(v: float) -> str:
    return repr(round(float(v), 6) + 0.0)


def _flow(v: Any) -> str:
    """A value of the generator block as one line of YAML flow style."""
    if v is None:
        return "null"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_flow(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    return _num(v) if isinstance(v, float) else str(v)
