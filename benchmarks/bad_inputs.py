"""Bad-input benchmark (issue 13): every bad input should give one clear ``Error:`` line and exit 1.

Builds a temp folder (a synthetic dataset, broken copies of it, a short training run, teacher zips
with pickle payloads, result files, YAML alias bombs) and runs ~240 bad inputs across the issue's
classes: CLI cases through ``click.testing.CliRunner`` against ``go2bench.cli.main``, Python-API
cases directly. Every case runs in a forked child of this process (fast: modules are imported
once) with RLIMIT_AS = its size + 3 GB, a timeout, its own cwd, and Genesis' ``init`` replaced by
a guard: a bad input that gets as far as building a scene counts as accepted. The few cases that
need a real scene (env after close, teach after its scene build, an agent that returns NaN) run in
one background child that initialises Genesis once.

Outcomes: clear (exit != 0, last line ``Error:``/a usage error, no traceback, the message names
the option/field/file), cryptic (an error that names none of them, or no one-line message),
traceback (an uncaught exception), silent (exit 0, or reached the scene build, or a payload ran),
blow-up (> 1 GB growth, or MemoryError at the address-space limit, or killed).

    python benchmarks/bad_inputs.py [--only CLASS] [--list] [--keep]
"""

from __future__ import annotations

import argparse, base64, dataclasses, io, json, os, pickle, re, resource, select, shutil, signal, sys, tempfile
import time, traceback, zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

RESULTS = Path(__file__).parent / "results" / "bad_inputs.json"
TIMEOUT_S, SCENE_TIMEOUT_S, LIMIT_GB, BLOWUP_GB = 120, 600, 3, 1
ZOO = Path(__file__).resolve().parent.parent / "go2bench" / "zoo" / "Go2Walk-v0"
CLASSES = {"checkpoint": "1 code execution from checkpoints", "data": "2 corrupt/inconsistent datasets (check, train)",
           "range": "3 numeric options/config fields", "yaml": "4 YAML alias bombs / tags", "resume": "5 resume, device",
           "num_envs": "6 huge num_envs", "results": "7 leaderboard files, eval agents", "collect": "8 collect output/resume",
           "env_close": "9 env after close", "pipeline": "10 pipeline --set", "files": "unknown keys, missing files, wrong types"}
H0, H1 = "trajectories_env_0000.h5", "trajectories_env_0001.h5"


@dataclasses.dataclass
class Case:
    cls: str
    desc: str
    args: list | None = None          # go2bench CLI arguments
    fn: Callable | None = None        # Python-API case: raising is the expected outcome
    names: tuple = ()                 # the error text must contain one of these (option, field or file)
    expect: str = "error"             # error | warn (exit 0 with a warning naming it) | safe (accepting is right)
    setup: Callable | None = None     # run in the case folder first
    check: Callable | None = None     # (output, folder) -> problem or None
    scene: bool = False               # needs a real Genesis scene (background batch)


class ReachedScene(BaseException):
    """Raised by the Genesis guard: the input was accepted up to building a scene."""


class Payload:  # unpickling it runs `touch MARKER`
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f"touch {self.marker}",))


# ------------------------------------------------------------------------------------------ fixtures
def torch_bytes(obj) -> bytes:
    import torch
    buf = io.BytesIO(); torch.save(obj, buf); return buf.getvalue()


def sb3_zip(path: Path, policy: bytes, payload_marker: Path | None = None, card: bool = False) -> None:
    data = {"num_timesteps": 64, "_n_updates": 0}
    if payload_marker:
        data["policy_class"] = {":type:": "<class 'abc.ABCMeta'>",
                                ":serialized:": base64.b64encode(pickle.dumps(Payload(payload_marker))).decode()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("data", json.dumps(data)); z.writestr("policy.pth", policy)
        z.writestr("pytorch_variables.pth", torch_bytes({})); z.writestr("_stable_baselines3_version", "2.3.2")
    if card:
        shutil.copy(ZOO / "model_card.json", path.parent / "model_card.json")


def _h5(fn):
    def go(d):
        import h5py
        with h5py.File(d / H1, "r+") as f: fn(f)
    return go


def _put(g, key, arr):
    del g[key]; g.create_dataset(key, data=arr)


def _edit_json(rel, fn):
    def go(d):
        p = d / rel(d); obj = json.loads(p.read_text()); fn(obj); p.write_text(json.dumps(obj))
    return go


META = lambda d: f"{d.name}.json"  # noqa: E731
HJ = lambda d: "trajectories_env_0001.json"  # noqa: E731

BREAKS: dict[str, tuple[Callable, tuple]] = {  # variant -> (break the dataset folder, names the message should hold)
    "overlap": (_h5(lambda f: f.copy(f["250-499"], "100-349")), (H1,)),
    "gap": (_h5(lambda f: f.__delitem__("250-499")), (H1,)),
    "bad_group_name": (_h5(lambda f: f.move("250-499", "chunk_1")), (H1, "chunk_1")),
    "float_step_num": (_h5(lambda f: _put(f["0-249"], "step_num", f["0-249/step_num"][()].astype(np.float32))), (H1,)),
    "fractional_step_num": (_h5(lambda f: _put(f["0-249"], "step_num", f["0-249/step_num"][()] + 0.5)), (H1,)),
    "negative_step_num": (_h5(lambda f: _put(f["0-249"], "step_num", f["0-249/step_num"][()] - 7)), (H1,)),
    "missing_step_num": (_h5(lambda f: f["0-249"].__delitem__("step_num")), (H1,)),
    "reward_2d": (_h5(lambda f: _put(f["0-249"], "reward", np.zeros((250, 2), np.float32))), (H1,)),
    "nan_reward": (_h5(lambda f: f["0-249/reward"].__setitem__(5, np.nan)), (H1,)),
    "inf_observation": (_h5(lambda f: f["250-499/proprio_observation"].__setitem__((3, 2), np.inf)), (H1,)),
    "short_action": (_h5(lambda f: _put(f["0-249"], "action", f["0-249/action"][:240])), (H1,)),
    "wide_observation": (_h5(lambda f: _put(f["0-249"], "proprio_observation", np.zeros((250, 34), np.float32))), (H1,)),
    "group_shorter_than_name": (_h5(lambda f: [_put(f["0-249"], k, f["0-249"][k][:200]) for k in
                                               ("proprio_observation", "action", "reward", "step_num")]), (H1,)),
    "empty_group": (_h5(lambda f: f.create_group("1000-1249")), (H1,)),
    "missing_metadata": (lambda d: (d / META(d)).unlink(), ("missing_metadata.json",)),
    "metadata_no_action_dim": (_edit_json(META, lambda m: m.pop("action_dim")), ("action_dim",)),
    "metadata_action_dim_str": (_edit_json(META, lambda m: m.update(action_dim="12")), ("action_dim",)),
    "metadata_not_json": (lambda d: (d / META(d)).write_text("{not json"), ("metadata_not_json.json",)),
    "history_json_task_name": (_edit_json(HJ, lambda m: m.update(task_name="other")), ("task_name",)),
    "history_json_action_dim": (_edit_json(HJ, lambda m: m.update(action_dim=13)), ("action_dim",)),
    "history_json_missing": (lambda d: (d / HJ(d)).unlink(), ("trajectories_env_0001.json",)),
    "truncated_h5": (lambda d: os.truncate(d / H1, (d / H1).stat().st_size // 2), (H1,)),
    "empty_h5": (lambda d: os.truncate(d / H1, 0), (H1,)),
    "text_h5": (lambda d: (d / H1).write_text("not an HDF5 file\n"), (H1,)),
    "no_h5_files": (lambda d: [(d / h).unlink() for h in (H0, H1)], ("no_h5_files", "trajectories_env_XXXX")),
}


def bomb(depth: int = 9, inline: bool = False) -> str:
    rows = ["&a [lol,lol,lol,lol,lol,lol,lol,lol,lol]"] + [
        f"&{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(depth - 1)]
    return "[" + ", ".join(rows) + "]" if inline else "\n".join(f"{chr(97 + i)}: {r}" for i, r in enumerate(rows)) + "\n"


def build_fixtures(fx: Path) -> dict:
    import h5py  # noqa: F401
    import torch
    from click.testing import CliRunner
    from go2bench.cli import main
    from go2bench.testing import write_synthetic_dataset
    os.chdir(fx); data = fx / "data"; mk = fx / "PWNED"
    write_synthetic_dataset(data, "good", n_histories=2, steps=1000, group_size=250, env_id="Go2Walk-v0")
    (fx / "cfg").mkdir(parents=True)
    for v, (brk, _) in BREAKS.items():
        brk(write_synthetic_dataset(data, v, n_histories=2, steps=1000, group_size=250, env_id="Go2Walk-v0"))
    for v in ["good", *BREAKS, "missing_dir"]:
        (fx / "cfg" / f"{v}.yaml").write_text(f"{v}:\n  path: {v}\n  group: go2\n")
    res = CliRunner().invoke(main, train_args(fx, "good") + ["--max_steps", "12", "--epochs", "2", "--save_every", "1"])
    assert res.exit_code == 0, res.output
    shutil.copytree(Path("runs/r"), fx / "run")
    state = torch.load(ZOO / "policy.pt", weights_only=True); policy = torch_bytes(state)
    sb3_zip(fx / "payload" / "final.zip", policy, mk)                        # no card: needs --trust-checkpoint
    sb3_zip(fx / "payload_card" / "final.zip", policy, mk, card=True)        # card: tensors only, payload ignored
    sb3_zip(fx / "pth_payload" / "final.zip", torch_bytes(Payload(mk)), card=True)
    sb3_zip(fx / "teach_run" / "checkpoints" / "ppo_64_steps.zip", policy, mk)
    from go2bench.teachers.ppo import PPOConfig
    (fx / "teach_run" / "ppo_config.json").write_text(json.dumps(
        {"env_id": "Go2Walk-v0", "ppo": dataclasses.asdict(PPOConfig()), "task": {}}))
    for name, blob in {"pt_payload": torch_bytes(Payload(mk)), "text": b"hello\n", "truncated": policy[:1000],
                       "random_weights": torch_bytes({k: torch.randn(3, 3) for k in state}), "empty": b""}.items():
        (fx / name).mkdir(); (fx / name / "policy.pt").write_bytes(blob)
        shutil.copy(ZOO / "model_card.json", fx / name / "model_card.json")
    (fx / "bad_card").mkdir(); shutil.copy(ZOO / "policy.pt", fx / "bad_card"); (fx / "bad_card" / "model_card.json").write_text("{oops")
    (fx / "vintix_payload.pt").write_bytes(torch_bytes({"format": "go2bench-vintix", "x": Payload(mk)}))
    (fx / "vintix_truncated.pt").write_bytes((fx / "run" / "final.pt").read_bytes()[:5000])
    (fx / "vintix_other.pt").write_bytes(torch_bytes({"a": torch.zeros(2)}))
    (fx / "afile").write_text("a regular file\n"); (fx / "png.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe" * 10)
    (fx / "bomb.yaml").write_text(bomb())
    (fx / "bomb_field.yaml").write_text(bomb() + "good: {path: good, group: go2, collect: *i}\n")
    (fx / "tag.yaml").write_text(f"dt: !!python/object/apply:os.system ['touch {mk}']\n")
    plug = fx / "plugins"; (plug / "bad_agents-0.0.dist-info").mkdir(parents=True)
    (plug / "bad_agents.py").write_text(
        "import numpy as np\ndef raises(e, c, d, s): raise RuntimeError('boom from plug-in')\nNOT_CALLABLE = 5\n"
        "def none(e, c, d, s): return None\nclass NoAct: pass\ndef no_act(e, c, d, s): return NoAct()\n"
        "class Nan:\n  def reset(self, num_envs=None, env_id=None, seed=None): pass\n"
        "  def act(self, obs, prev_reward=None, episode_start=None): return np.full((len(obs), 12), np.nan, np.float32)\n"
        "def nan(e, c, d, s): return Nan()\n")
    (plug / "bad_agents-0.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: bad-agents\nVersion: 0.0\n")
    (plug / "bad_agents-0.0.dist-info" / "entry_points.txt").write_text("[go2bench.agents]\n" + "".join(
        f"{n}-agent = {m}\n" for n, m in [("raises", "bad_agents:raises"), ("notcallable", "bad_agents:NOT_CALLABLE"),
                                         ("none", "bad_agents:none"), ("noact", "bad_agents:no_act"),
                                         ("nan", "bad_agents:nan"), ("importfail", "no_such_module_xyz:make")]))
    results = fx / "results"; results.mkdir()
    base = json.loads((Path(__file__).resolve().parent.parent / "tests/fixtures/results/random_Go2Walk-v0.json").read_text())
    (results / "base.json").write_text(json.dumps(base))
    return {}


# ------------------------------------------------------------------------------------------ cases
def train_args(fx: Path, cfg="good", *extra) -> list:
    """A short valid `train` command line (a dataset variant's config, or a .yaml path) plus ``extra``."""
    return ["train", "--dataset_config_paths", cfg if cfg.endswith(".yaml") else str(fx / "cfg" / f"{cfg}.yaml"), "--data_dir", str(fx / "data"),
            "--model", "tiny", "--context_len", "32", "--batch_size", "2", "--max_steps", "2", "--num_workers", "0",
            "--no_progress_bar", "--out_dir", "runs", "--name", "r", *extra]


EVAL = ["eval", "--agent", "random", "--num-envs", "1", "--episodes", "1", "--max-episode-steps", "5", "--no-progress"]
TEACH = ["teach", "--num-envs", "2", "--total-steps", "48", "--eval-episodes", "0", "--quiet", "--no-progress-bar", "--out", "t"]
COLLECT = ["collect", "--env", "Go2Walk-v0", "--num-histories", "2", "--steps-per-history", "100", "--no-progress-bar", "--out", "ds"]
ROLLOUT = ["rollout", "--env", "Go2Walk-v0", "--agent", "random", "--num-envs", "1", "--steps", "5"]


def write(name: str, text: str | bytes) -> Callable:
    return lambda d: (d / name).write_bytes(text if isinstance(text, bytes) else text.encode())


def result_file(mutate: Callable | None = None, raw: str | None = None) -> Callable:
    def go(d):
        base = json.loads((d.parent.parent / "fx" / "results" / "base.json").read_text())
        if mutate: mutate(base)
        (d / "r.json").write_text(raw if raw is not None else json.dumps(base))
    return go


def md_table_ok(out: str, d: Path) -> str | None:
    md = d / "lb" / "leaderboard.md"
    if not md.exists(): return None
    lines = md.read_text().split("\n") + [""]; start = next((i for i, l in enumerate(lines) if l.startswith("|")), len(lines) - 1)
    table = lines[start:start + lines[start:].index("")]
    counts = [len(re.findall(r"(?<!\\)\|", l)) for l in table]
    return None if all(l.startswith("|") for l in table) and len(set(counts)) == 1 and len(table) == 3 \
        else f"the Markdown table is broken: {table!r}"[:300]


def metrics_unique(out: str, d: Path) -> str | None:
    recs = [json.loads(l) for l in (d / "runs" / "r" / "metrics.jsonl").read_text().splitlines() if l.strip()]
    steps = [r["step"] for r in recs if "loss" in r]
    return None if len(steps) == len(set(steps)) else f"metrics.jsonl repeats steps after the resume: {steps}"


def copy_run(mutate: Callable = lambda r: None) -> Callable:
    def go(d):
        shutil.copytree(d.parent.parent / "fx" / "run", d / "runs" / "r"); mutate(d / "runs" / "r")
    return go


def cases(fx: Path) -> list[Case]:
    C, mk = [], fx / "PWNED"
    add = lambda cls, desc, args=None, **kw: C.append(Case(cls, desc, args, **kw))  # noqa: E731
    # 1 checkpoints --------------------------------------------------------------------------
    for spec, names in [("teacher:{}/payload/final.zip", ("final.zip",)), ("{}/payload/final.zip", ("final.zip",)),
                        ("teacher:{}/payload", ("payload",)), ("teacher:{}/pth_payload/final.zip", ("final.zip",)),
                        ("teacher:{}/pt_payload", ("policy.pt",)), ("teacher:{}/text", ("policy.pt",)),
                        ("teacher:{}/truncated", ("policy.pt",)), ("teacher:{}/empty", ("policy.pt",)),
                        ("teacher:{}/random_weights", ("policy.pt",)), ("teacher:{}/bad_card", ("model_card.json",)),
                        ("teacher:{}/nonexistent.zip", ("nonexistent.zip",)), ("vintix:{}/vintix_payload.pt", ("vintix_payload.pt",)),
                        ("vintix:{}/vintix_truncated.pt", ("vintix_truncated.pt",)), ("vintix:{}/vintix_other.pt", ("vintix_other.pt",)),
                        ("vintix-nocontext:{}/afile", ("afile",)), ("vintix:{}/missing.pt", ("missing.pt",))]:
        add("checkpoint", f"eval --agent {spec.format('FX')}", EVAL + ["--agent", spec.format(fx)], names=names)
    add("checkpoint", "eval a payload zip WITH model card (tensors only: accepting is right, payload must not run)",
        EVAL + ["--agent", f"teacher:{fx}/payload_card/final.zip"], names=("final.zip",), expect="safe")
    for t, names in [("payload/final.zip", ("final.zip",)), ("text/policy.pt", ("policy.pt",)), ("truncated/policy.pt", ("policy.pt",))]:
        add("checkpoint", f"collect --teacher FX/{t}", COLLECT + ["--teacher", str(fx / t)], names=names)
    add("checkpoint", "teach --resume from a checkpoint zip with a pickle payload (payload must not run)",
        TEACH + ["--resume", "--total-steps", "64"], setup=lambda d: shutil.copytree(fx / "teach_run", d / "t"),
        expect="safe", scene=True, names=("ppo_64_steps.zip",))
    # 2 datasets -----------------------------------------------------------------------------
    for v, (_, names) in BREAKS.items():
        add("data", f"data check {v}", ["data", "check", str(fx / "data" / v)], names=names)
        add("data", f"train on {v}", train_args(fx, v), names=names)
    # 3 numeric ranges -------------------------------------------------------------------------
    for opt, val in [("grad_clip", "-1"), ("grad_clip", "0"), ("grad_clip", "nan"), ("min_lr_ratio", "-50"),
                     ("min_lr_ratio", "2"), ("lr", "nan"), ("lr", "-1"), ("lr", "inf"), ("weight_decay", "-1"),
                     ("weight_decay", "nan"), ("beta1", "1"), ("beta2", "nan"), ("warmup_steps", "-1"), ("max_steps", "0"),
                     ("max_minutes", "nan"), ("max_minutes", "inf"), ("context_len", "1"), ("batch_size", "0"),
                     ("trajectory_sparsity", "0"), ("epochs", "0"), ("save_every", "-1"), ("grad_accum", "0"),
                     ("num_workers", "-1"), ("seed", "-1"), ("seed", "4294967296"), ("log_every", "0")]:
        add("range", f"train --{opt} {val}", train_args(fx, "good", f"--{opt}", val), names=(opt,))
    for ov in ["n_layers=0", "dropout=1.5", "dropout=.nan", "n_heads=3", "rope_base=-1", "norm_eps=0"]:
        add("range", f"train --model_override {ov}", train_args(fx, "good", "--model_override", ov), names=(ov.split("=")[0],))
    for opt, val in [("--episodes", "-1"), ("--num-envs", "0"), ("--max-episode-steps", "0"), ("--video-frames", "0"),
                     ("--random-score", "nan"), ("--expert-score", "inf"), ("--seeds", "-1"), ("--seeds", "a,b")]:
        add("range", f"eval {opt} {val}", EVAL + [opt, val], names=(opt.strip("-"),))
    add("range", "eval --random-score 5 --expert-score 5 (zero range)", EVAL + ["--random-score", "5", "--expert-score", "5"],
        names=("random-score", "expert-score", "random_score", "expert_score"))
    for field, yml in [("dt", "dt: 0"), ("dt", "dt: .nan"), ("substeps", "substeps: 0"), ("episode_length_s", "episode_length_s: .inf"),
                       ("tracking_sigma", "tracking_sigma: -1"), ("base_height_target", "base_height_target: -0.3"),
                       ("lin_vel_x", "commands: {lin_vel_x: [1.0, 0.0]}"), ("lin_vel_x", "commands: {lin_vel_x: [.nan, .nan]}"),
                       ("resample_time_s", "commands: {resample_time_s: 0}"), ("tracking_lin_vel", "rewards: {tracking_lin_vel: .nan}"),
                       ("lin_vel", "obs_scales: {lin_vel: .inf}"), ("friction_range", "randomization: {friction_range: [-1, 1]}"),
                       ("motor_strength_range", "randomization: {motor_strength_range: [0, 1]}"),
                       ("push_interval_s", "randomization: {push_interval_s: -1}"), ("push_max_velocity", "randomization: {push_max_velocity: -2}")]:
        add("range", f"eval --config with `{yml}`", EVAL + ["--config", "w.yaml"], setup=write("w.yaml", yml), names=(field,))
    for opt, val in [("--total-steps", "0"), ("--checkpoint-every", "0"), ("--target-kl", "-1"), ("--target-kl", "nan"),
                     ("--max-minutes", "nan"), ("--stop-at", "nan"), ("--log-every", "inf"), ("--seed", "-1"),
                     ("--task-eval-train", "-1")]:
        add("range", f"teach {opt} {val}", TEACH + [opt, val], names=(opt.strip("-"),))
    for opt, val in [("--num-histories", "0"), ("--steps-per-history", "0"), ("--p", "0"), ("--p", "nan"), ("--f", "1"),
                     ("--max-perf", "2"), ("--seed", "-1"), ("--group-size", "0"), ("--chunk-steps", "0")]:
        names = {"--p": ("p", "noise-power"), "--f": ("f", "noise-floor-fraction")}.get(opt, (opt.strip("-"),))
        add("range", f"collect {opt} {val}", COLLECT + [opt, val], names=names)
    add("range", "rollout --steps 0", ROLLOUT + ["--steps", "0"], names=("steps",))
    add("range", "rollout --seed -1", ROLLOUT + ["--seed", "-1"], names=("seed",))
    # 4 YAML alias bombs and tags ---------------------------------------------------------------------
    for desc, args, names in [
            ("eval --config BOMB", EVAL + ["--config", f"{fx}/bomb.yaml"], ("bomb.yaml",)),
            ("train --dataset_config_paths BOMB", train_args(fx, f"{fx}/bomb.yaml"), ("bomb.yaml",)),
            ("train --model BOMB", train_args(fx, "good", "--model", f"{fx}/bomb.yaml"), ("bomb.yaml",)),
            ("train --model_override n_layers=INLINE_BOMB", train_args(fx, "good", "--model_override", "n_layers=" + bomb(inline=True)), ("override", "n_layers")),
            ("data check --config BOMB", ["data", "check", "--config", f"{fx}/bomb.yaml"], ("bomb.yaml",)),
            ("data check --config BOMB inside a known field", ["data", "check", "--config", f"{fx}/bomb_field.yaml"], ("bomb_field.yaml",)),
            ("collect --config BOMB", ["collect", "--config", f"{fx}/bomb.yaml"], ("bomb.yaml",)),
            ("pipeline --set eval.agents=INLINE_BOMB", ["pipeline", "--print-config", "--set", "eval.agents=" + bomb(inline=True)], ("eval.agents",)),
            ("eval --config with a !!python/object tag", EVAL + ["--config", f"{fx}/tag.yaml"], ("tag.yaml",)),
            ("data check --config with a !!python tag", ["data", "check", "--config", f"{fx}/tag.yaml"], ("tag.yaml",)),
            ("train --model with a !!python tag", train_args(fx, "good", "--model", f"{fx}/tag.yaml"), ("tag.yaml",)),
            ("pipeline --set with a !!python tag", ["pipeline", "--print-config", "--set", f"train.lr=!!python/object/apply:os.system ['touch {mk}']"], ("train.lr",)),
            ("eval --config unclosed bracket", EVAL + ["--config", "w.yaml"], ("w.yaml",)),
            ("eval --config binary (PNG bytes)", EVAL + ["--config", f"{fx}/png.yaml"], ("png.yaml",))]:
        add("yaml", desc, args, names=names, setup=write("w.yaml", "dt: [0.01, 0.02\n") if "unclosed" in desc else None)
    # 5 resume and devices -----------------------------------------------------------------------------
    RESUME = train_args(fx, "good", "--max_steps", "12", "--epochs", "2", "--save_every", "1", "--resume")
    for opt, val in [("context_len", "48"), ("batch_size", "4"), ("lr", "0.001"), ("seed", "3"), ("trajectory_sparsity", "64"),
                     ("model", "seed"), ("model_override", "n_layers=3"), ("grad_accum", "2")]:
        add("resume", f"train --resume --{opt} {val} (differs from the checkpoint)", RESUME + [f"--{opt}", val],
            setup=copy_run(), names=(opt if opt != "model_override" else "n_layers",))
    add("resume", "train --resume --context_len 48 --lr 0.001: both conflicts named", RESUME + ["--context_len", "48", "--lr", "0.001"],
        setup=copy_run(), names=("context_len",), check=lambda o, d: None if "lr" in o.split("context_len", 1)[-1] else "lr not named")
    for desc, mut in [("latest.json is garbage", lambda r: (r / "latest.json").write_text("{garbage")),
                      ("latest.json names a missing file", lambda r: (r / "latest.json").write_text('{"file": "nope.pt"}')),
                      ("latest.json names ../../afile", lambda r: (r / "latest.json").write_text('{"file": "../../afile"}')),
                      ("final.pt truncated", lambda r: os.truncate(r / "final.pt", 4000)),
                      ("final.pt holds a pickle payload", lambda r: (r / "final.pt").write_bytes(torch_bytes(Payload(mk)))),
                      ("final.pt is a torch file but not a go2bench checkpoint", lambda r: (r / "final.pt").write_bytes(torch_bytes({"a": 1})))]:
        add("resume", f"train --resume, {desc} (expect: warning, fall back to epoch_0001.pt)", RESUME, expect="warn",
            setup=copy_run(mut), names=("latest.json", "final.pt"), check=metrics_unique)
    add("resume", "train --resume, every checkpoint corrupt", RESUME, names=("final.pt", "epoch_0001.pt"),
        setup=copy_run(lambda r: [os.truncate(r / n, 100) for n in ("final.pt", "epoch_0001.pt")]))
    for dev in ["cuda", "cuda:3", "mps", "tpu"]:
        add("resume", f"train --device {dev}", train_args(fx, "good", "--device", dev), names=("device",))
    add("resume", "eval --device cuda", EVAL + ["--agent", "teacher", "--device", "cuda"], names=("device", "cuda"))
    add("resume", "eval --device tpu", EVAL + ["--device", "tpu"], names=("device",))
    add("resume", "eval --backend gpu", EVAL + ["--backend", "gpu"], names=("backend", "gpu"))
    add("resume", "collect --backend gpu", COLLECT + ["--backend", "gpu"], names=("backend", "gpu"))
    add("resume", "teach --device cuda", TEACH + ["--device", "cuda"], scene=True, names=("device", "cuda"))
    add("resume", "teach --resume --target-kl 0.05 (differs from ppo_config.json)", TEACH + ["--resume", "--total-steps", "64", "--target-kl", "0.05"],
        setup=lambda d: shutil.copytree(fx / "teach_run", d / "t"), scene=True, names=("target_kl",))
    # 6 huge num_envs -----------------------------------------------------------------------------------
    for n in [10**6, 2**40]:
        add("num_envs", f"gymnasium.make_vec(num_envs={n})", fn=lambda n=n: __import__("gymnasium").make_vec("Go2Walk-v0", num_envs=n), names=("num_envs",))
    for n in [0, -3, 2.5, "4", True]:
        add("num_envs", f"gymnasium.make_vec(num_envs={n!r})", fn=lambda n=n: __import__("gymnasium").make_vec("Go2Walk-v0", num_envs=n), names=("num_envs",))
    add("num_envs", "eval --num-envs 1000000", EVAL + ["--num-envs", "1000000"], names=("num_envs", "num-envs"))
    add("num_envs", "rollout --num-envs 10000000", ROLLOUT + ["--num-envs", "10000000"], names=("num_envs", "num-envs"))
    add("num_envs", "teach --num-envs 10000000", TEACH + ["--num-envs", "10000000"], names=("num_envs", "num-envs"))
    add("num_envs", "collect --num-histories 10000000", COLLECT + ["--num-histories", "10000000"], names=("num_envs", "num-histories", "num_histories"))
    add("num_envs", "pipeline --set eval.num_envs=1000000", ["pipeline", "--print-config", "--set", "eval.num_envs=1000000"], names=("num_envs",))
    # 7 leaderboard result files, eval agents -------------------------------------------------------------
    LB = ["leaderboard", "r.json", "--out", "lb"]
    for desc, mut, names in [("agent is an int", lambda r: r.update(agent=5), ("agent",)), ("seeds is a string", lambda r: r.update(seeds="0,1"), ("seeds",)),
                             ("mean_return is a string", lambda r: r.update(mean_return="0.9"), ("mean_return",)),
                             ("normalized_score NaN", lambda r: r.update(normalized_score=float("nan")), ("normalized_score",)),
                             ("per_seed empty", lambda r: r.update(per_seed=[]), ("per_seed",)), ("returns too short", lambda r: r["returns"].pop(), ("returns",)),
                             ("config.episodes 0", lambda r: r["config"].update(episodes=0), ("episodes",)),
                             ("format /0", lambda r: r.update(format="go2bench.eval/0"), ("format",)), ("no format", lambda r: r.pop("format"), ("format",)),
                             ("config is a list", lambda r: r.update(config=[1]), ("config",))]:
        add("results", f"leaderboard: {desc}", LB, setup=result_file(mut), names=("r.json",) + names)
    for desc, raw in [("top level a list", "[1, 2]"), ("not JSON", "agent: x"), ("empty file", ""), ("nested 100000 deep", "[" * 100000 + "]" * 100000)]:
        add("results", f"leaderboard: {desc}", LB, setup=result_file(raw=raw), names=("r.json",))
    for desc, mut in [("agent with '|'", lambda r: r.update(agent="a|b", agent_spec="a|b")),
                      ("agent with a newline", lambda r: r.update(agent="a\nb", agent_spec="a\nb")), ("env with '|'", lambda r: r.update(env="Go2|Walk"))]:
        add("results", f"leaderboard: {desc} (expect an escaped table)", LB, setup=result_file(mut), expect="safe", check=md_table_ok)
    add("results", "leaderboard: the same result twice", ["leaderboard", "r.json", "r.json", "--out", "lb"], setup=result_file(), names=("r.json",))
    add("results", "leaderboard --out under a regular file", ["leaderboard", "r.json", "--out", f"{fx}/afile/lb"], setup=result_file(), names=("afile",))
    for spec, names in [("", ("agent",)), ("nosuch", ("nosuch",)), ("random:ckpt.pt", ("random",)), (":x", ("agent",)),
                        ("raises-agent", ("raises-agent",)), ("notcallable-agent", ("notcallable-agent",)),
                        ("none-agent", ("none-agent",)), ("noact-agent", ("noact-agent",)), ("importfail-agent", ("importfail-agent",))]:
        add("results", f"eval --agent {spec!r}", EVAL + ["--agent", spec], names=names)
    add("results", "eval --agent nan-agent (acts NaN)", EVAL + ["--agent", "nan-agent"], scene=True, names=("nan-agent",))
    # 8 collect ------------------------------------------------------------------------------------------------
    from go2bench.collect.config import CollectConfig
    ident = lambda **kw: {"collection": dataclasses.asdict(CollectConfig(**{"num_histories": 2, "steps_per_history": 100, **kw})), "teacher": {"sha256": "00"}}  # noqa: E731
    def fake_ds(meta, name="ds", h5=True):
        def go(d):
            (d / "ds").mkdir(); (d / "ds" / H0).write_bytes(b"") if h5 else None
            if meta is not None: (d / "ds" / f"{name}.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
        return go
    for desc, args, setup, names in [
            ("--out under a regular file", COLLECT + ["--out", f"{fx}/afile/ds"], None, ("afile",)),
            ("--out is a regular file", COLLECT + ["--out", f"{fx}/afile"], None, ("afile", "out")),
            ("--resume, steps_per_history differs", COLLECT + ["--resume"], fake_ds(ident(steps_per_history=50)), ("steps_per_history",)),
            ("--resume, seed differs", COLLECT + ["--resume", "--seed", "1"], fake_ds(ident()), ("seed",)),
            ("--resume, other teacher", COLLECT + ["--resume"], fake_ds(ident()), ("teacher",)),
            ("--resume, folder renamed and settings differ", COLLECT + ["--resume", "--p", "0.3"], fake_ds(ident(), name="old"), ("old.json", "p")),
            ("--resume, no metadata", COLLECT + ["--resume"], fake_ds(None), ("ds.json", "metadata")),
            ("--resume, metadata not JSON", COLLECT + ["--resume"], fake_ds("{oops"), ("ds.json",)),
            ("existing folder without --resume", COLLECT, fake_ds(ident()), ("ds", "resume")),
            ("--env-ids 5-2", COLLECT + ["--env-ids", "5-2"], None, ("env-ids",)), ("--env-ids 0-99", COLLECT + ["--env-ids", "0-99"], None, ("env-ids",)),
            ("--config and --out", ["collect", "--config", "go2_dataset_config", "--out", "x"], None, ("config", "out")),
            ("--config with collect.p .nan", ["collect", "--config", "c.yaml"], write("c.yaml", "g: {path: g, group: g, collect: {env: Go2Walk-v0, p: .nan}}"), ("p", "c.yaml")),
            ("--config with an unknown collect key", ["collect", "--config", "c.yaml"], write("c.yaml", "g: {path: g, group: g, collect: {env: Go2Walk-v0, nois: 1}}"), ("nois",)),
            ("--teacher a folder without a policy", COLLECT + ["--teacher", f"{fx}/cfg"], None, ("cfg",)),
            ("no --env", ["collect", "--out", "ds"], None, ("env",))]:
        add("collect", f"collect {desc}", args, setup=setup, names=names)
    # 9 env after close (one real scene, shared) -------------------------------------------------------------
    for desc, fn in [("WalkEnv.step with NaN actions", lambda S: _env(S).step(np.full(12, np.nan, np.float32))),
                     ("WalkEnv.step after close()", lambda S: (_env(S).close(), _env(S).step(np.zeros(12, np.float32)))),
                     ("WalkEnv.reset after close()", lambda S: _env(S).reset(seed=0)),
                     ("vector env step after close()", lambda S: (_env(S, 2).close(), _env(S, 2).step(np.zeros((2, 12), np.float32)))),
                     ("vector env reset after close()", lambda S: _env(S, 2).reset(seed=0))]:
        add("env_close", desc, fn=fn, scene=True, names=("close", "nan", "NaN"))
    # 10 pipeline --set ---------------------------------------------------------------------------------------
    for kv in ["train.lr=-1", "train.lr=.nan", "train.grad_clip=-1", "train.min_lr_ratio=-50", "collect.p=.nan", "collect.f=1",
               "collect.num_histories=0", "collect.seed=-1", "eval.episodes=0", "eval.seeds=[]", "eval.seeds=[-1]",
               "eval.agents=[]", "eval.agents=[nosuch]", "eval.jobs=0", "gpus=0", "reward_scale=-1", "reward_scale=.inf",
               "eval.max_episode_steps=0", "train_gpus=2", "envs=[Nope-v0]", "train.bogus=1", "bogus.x=1", "train.data_dir=x",
               "train=1", "noequals", "train.lr=abc"]:
        key = kv.split("=")[0]
        add("pipeline", f"pipeline --set {kv}", ["pipeline", "--print-config", "--out", "p", "--set", kv], names=(key, key.split(".")[-1]))
    add("pipeline", "pipeline --stages bogus", ["pipeline", "--print-config", "--stages", "bogus"], names=("stages",))
    # 11 unknown keys, missing files, wrong types ------------------------------------------------------------
    for desc, args, setup, names in [
            ("data check MISSING_DIR", ["data", "check", "nope"], None, ("nope",)), ("data check on a regular file", ["data", "check", f"{fx}/afile"], None, ("afile",)),
            ("data check --config missing", ["data", "check", "--config", "nope.yaml"], None, ("nope.yaml",)),
            ("data check --config naming a missing dataset dir", ["data", "check", "--config", f"{fx}/cfg/missing_dir.yaml", "--data-dir", f"{fx}/data"], None, ("missing_dir",)),
            ("train --dataset_config_paths missing", train_args(fx, "nope.yaml"), None, ("nope",)),
            ("train dataset config with typo key", train_args(fx, "c.yaml"), write("c.yaml", "good: {path: good, grup: go2}"), ("grup",)),
            ("train dataset config entry without group", train_args(fx, "c.yaml"), write("c.yaml", "good: {path: good}"), ("group",)),
            ("train dataset config with absolute path", train_args(fx, "c.yaml"), write("c.yaml", "good: {path: /etc, group: go2}"), ("path",)),
            ("train dataset config with '..' path", train_args(fx, "c.yaml"), write("c.yaml", "good: {path: ../x, group: go2}"), ("path",)),
            ("train dataset config is a list", train_args(fx, "c.yaml"), write("c.yaml", "- good\n"), ("c.yaml",)),
            ("train dataset config reward_scale 0", train_args(fx, "c.yaml"), write("c.yaml", "good: {path: good, group: go2, reward_scale: 0}"), ("reward_scale",)),
            ("train --model missing.yaml", train_args(fx, "good", "--model", "missing.yaml"), None, ("missing.yaml",)),
            ("train --model YAML with unknown key", train_args(fx, "good", "--model", "m.yaml"), write("m.yaml", "preset: tiny\nn_layer: 2\n"), ("n_layer",)),
            ("train --model YAML with unknown preset", train_args(fx, "good", "--model", "m.yaml"), write("m.yaml", "preset: huge\n"), ("huge", "preset")),
            ("train --model_override unknown key", train_args(fx, "good", "--model_override", "n_layer=2"), None, ("n_layer",)),
            ("train --out_dir under a regular file", train_args(fx, "good", "--out_dir", f"{fx}/afile/runs"), None, ("afile",)),
            ("eval --config unknown key", EVAL + ["--config", "w.yaml"], write("w.yaml", "dtt: 0.02\n"), ("dtt",)),
            ("eval --config unknown nested key", EVAL + ["--config", "w.yaml"], write("w.yaml", "commands: {lin_vel: [0, 1]}\n"), ("lin_vel",)),
            ("eval --config wrong type", EVAL + ["--config", "w.yaml"], write("w.yaml", "dt: fast\n"), ("dt",)),
            ("eval --config list", EVAL + ["--config", "w.yaml"], write("w.yaml", "- 1\n"), ("w.yaml",)),
            ("eval --config duplicate key", EVAL + ["--config", "w.yaml"], write("w.yaml", "dt: 0.02\ndt: 0.05\n"), ("dt",)),
            ("eval --config a directory", EVAL + ["--config", str(fx)], None, ("config",)),
            ("eval --out under a regular file", EVAL + ["--out", f"{fx}/afile/r.json"], None, ("afile",)),
            ("eval --video under a regular file", EVAL + ["--video", f"{fx}/afile/v.mp4"], None, ("afile",)),
            ("rollout --out under a regular file", ROLLOUT + ["--out", f"{fx}/afile/r.json"], None, ("afile",)),
            ("teach --out under a regular file", TEACH + ["--out", f"{fx}/afile/t"], None, ("afile",)),
            ("leaderboard missing file", ["leaderboard", "nope.json"], None, ("nope.json",)),
            ("leaderboard --datasets a folder without histories", ["leaderboard", "r.json", "--out", "lb", "--datasets", f"{fx}/cfg"], result_file(), ("cfg",)),
            ("data fix on a regular file", ["data", "fix", f"{fx}/afile"], None, ("afile",))]:
        add("files", desc, args, setup=setup, names=names)
    return C


def _env(S: dict, n: int = 0):
    if n not in S:
        import gymnasium, go2bench.envs  # noqa: E401,F401
        go2bench.envs.register_envs()
        S[n] = gymnasium.make_vec("Go2Walk-v0", num_envs=n) if n else gymnasium.make("Go2Walk-v0")
        S[n].reset(seed=0)
    return S[n]


# ------------------------------------------------------------------------------------------ running
def _status() -> dict:
    return {l.split(":")[0]: int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(("VmSize", "VmPeak"))}


def run_one(case: Case, folder: Path, fx: Path, state: dict) -> dict:
    """Run one case in this process (a child): the raw facts, classified later."""
    folder.mkdir(parents=True, exist_ok=True); os.chdir(folder)
    if case.setup: case.setup(folder)
    st, rss0 = _status(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = {"exit": None, "output": "", "exc": None, "scene": False}
    try:
        if case.args is not None:
            from click.testing import CliRunner
            from go2bench.cli import main
            res = CliRunner().invoke(main, [str(a) for a in case.args], catch_exceptions=True)
            r.update(exit=res.exit_code, output=res.output)
            if res.exception is not None and not isinstance(res.exception, SystemExit):
                r["exc"] = "".join(traceback.format_exception(*res.exc_info))[-3000:]
        else:
            value = case.fn(state) if case.scene else case.fn()
            r.update(exit=0, output=f"returned {type(value).__name__}")
    except ReachedScene:
        r["scene"] = True
    except Exception as e:  # noqa: BLE001 - an API case raising is the expected outcome
        r.update(exit=1, output=f"Error: {type(e).__name__}: {e}")
        if not isinstance(e, (ValueError, RuntimeError, OSError, MemoryError)):
            r["exc"] = traceback.format_exc()[-3000:]
    st1 = _status()
    r["rss_growth_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    r["at_limit"] = (st1["VmPeak"] - max(st["VmPeak"], st["VmSize"])) / 2**20 > LIMIT_GB - 0.5
    r["payload_ran"] = (fx / "PWNED").exists()
    if r["payload_ran"]: (fx / "PWNED").unlink()
    if case.check and not r["scene"] and r["exc"] is None:
        try: r["check"] = case.check(r["output"], folder)
        except Exception as e: r["check"] = f"check failed: {e!r}"  # noqa: BLE001
    return r


def _guard(orig):
    """Genesis' init for the fast cases: the GPU backend's own checks, then ReachedScene instead of a build."""
    def init(backend="cpu"):
        if backend != "cpu":
            return orig(backend)
        raise ReachedScene()
    return init


def fork(fn: Callable[[], Any], timeout: float, log: Path, guard: bool = True, limit: bool = True) -> tuple[Any, str]:
    """``fn()`` in a forked child (JSON-able result); (result or None, why not)."""
    rd, wr = os.pipe(); sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child
        os.close(rd); fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC); os.dup2(fd, 1); os.dup2(fd, 2)
        try:
            if limit:
                hard = resource.getrlimit(resource.RLIMIT_AS)[1]
                resource.setrlimit(resource.RLIMIT_AS, (_status()["VmSize"] * 1024 + LIMIT_GB * 2**30, hard))
            if guard:
                import go2bench.envs.genesis_runtime as gr
                gr.init = _guard(gr.init)
            out = json.dumps(fn()).encode()
        except BaseException as e:  # noqa: BLE001
            out = json.dumps({"internal": f"{type(e).__name__}: {e}"}).encode()
        with os.fdopen(wr, "wb") as w: w.write(out)
        os._exit(0)
    os.close(wr); chunks, deadline, why = [], time.time() + timeout, ""
    while True:
        left = deadline - time.time()
        if left <= 0:
            os.kill(pid, signal.SIGKILL); why = f"timeout after {timeout:.0f} s"; break
        if select.select([rd], [], [], left)[0]:
            b = os.read(rd, 1 << 16)
            if not b: break
            chunks.append(b)
    os.close(rd); _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and not why:
        why = f"killed by signal {os.WTERMSIG(status)}"
    try: return json.loads(b"".join(chunks)), why
    except ValueError: return None, why or "no result"


def classify(case: Case, r: dict | None, why: str) -> tuple[str, str]:
    norm = lambda s: s.lower().replace("-", "_")  # noqa: E731
    if r is None or "internal" in r:
        if "signal 9" in why or "signal 6" in why: return "blow-up", why
        return ("silent", f"no error within the time limit ({why}): the input was accepted") if "timeout" in why \
            else ("traceback", why or r.get("internal", "?"))
    if r["payload_ran"]: return "silent", "the pickle payload RAN (code execution)"
    if r["rss_growth_mb"] > BLOWUP_GB * 1024 or (r["at_limit"] and "MemoryError" in (r["exc"] or r["output"])):
        return "blow-up", f"memory grew {r['rss_growth_mb']:.0f} MB / hit the {LIMIT_GB} GB limit"
    if r["exc"]: return "traceback", r["exc"].strip().splitlines()[-1][:300]
    if r.get("check"): return "silent", r["check"]
    lines = [l.strip() for l in r["output"].splitlines() if l.strip()]
    if r["scene"] or r["exit"] == 0:
        if case.expect == "safe": return "clear", "accepted (correct for this input)"
        if case.expect == "warn" and r["exit"] == 0:
            warns = [l for l in lines if l.lower().startswith("warning")]
            if any(norm(n) in norm(" ".join(warns)) for n in case.names): return "clear", warns[0][:300]
        return "silent", "accepted: reached the Genesis scene build" if r["scene"] else "exit 0"
    if "Traceback" in r["output"]: return "traceback", lines[-1][:300]
    errs = [l for l in lines if l.lower().startswith("error:")]
    if not errs or not lines[-1].lower().startswith(("error:", "warning:")):
        return "cryptic", f"exit {r['exit']} without a one-line Error: message: {(lines or [''])[-1][:250]}"
    text = " ".join(errs)
    if case.names and not any(norm(n) in norm(text) for n in case.names):
        return "cryptic", f"names none of {list(case.names)}: {errs[-1][:250]}"
    return "clear", errs[-1][:300]


def scene_batch(todo: list, fx: Path, out: Path) -> dict:
    """Cases needing a real scene, one after the other in this process (Genesis initialised once)."""
    sys.path.insert(0, str(fx / "plugins")); state: dict = {}
    for i, case in todo:
        with open(out, "a") as f: f.write(json.dumps({"i": i, "started": True}) + "\n")
        try: r = run_one(case, fx.parent / "cases" / f"{i:03d}", fx, state)
        except Exception as e: r = {"internal": repr(e)}  # noqa: BLE001
        with open(out, "a") as f: f.write(json.dumps({"i": i, "r": r}) + "\n")
    return {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=list(CLASSES), help="run one class")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bad_inputs_")); fx = root / "fx"
    todo = [(i, c) for i, c in enumerate(cases(fx)) if a.only in (None, c.cls)]
    if a.list:
        for i, c in todo: print(f"{i:3d} {c.cls:10s} {c.desc}  {' '.join(map(str, c.args or []))[:150]}")
        return shutil.rmtree(root)
    os.environ.pop("GO2BENCH_TRACEBACK", None); t0 = time.time()
    import click.testing, h5py, torch, stable_baselines3, go2bench.cli, go2bench.vintix.train, go2bench.eval.protocol  # noqa: E401,F401
    import go2bench.collect.collector, go2bench.eval.leaderboard, go2bench.teachers.ppo, gymnasium  # noqa: E401,F401
    import go2bench.envs; go2bench.envs.register_envs()  # noqa: E702
    fx.mkdir(); (root / "cases").mkdir()
    res, why = fork(lambda: build_fixtures(fx), 600, root / "fixtures.log", limit=False)
    if res != {}: sys.exit(f"fixtures failed ({why}): {res}; see {root / 'fixtures.log'}")
    print(f"fixtures in {root} ({time.time() - t0:.0f} s)", flush=True)
    scene = [(i, c) for i, c in todo if c.scene]; batch_pid, batch_out = None, root / "scene.jsonl"
    if scene:
        sys.stdout.flush(); batch_pid = os.fork()
        if batch_pid == 0:
            fd = os.open(root / "scene.log", os.O_WRONLY | os.O_CREAT); os.dup2(fd, 1); os.dup2(fd, 2)
            try: scene_batch(scene, fx, batch_out)
            finally: os._exit(0)
    records = []
    sys.path.insert(0, str(fx / "plugins"))
    for i, c in todo:
        if c.scene: continue
        t = time.time(); folder = root / "cases" / f"{i:03d}"
        r, why = fork(lambda: run_one(c, folder, fx, {}), TIMEOUT_S, root / "cases" / f"{i:03d}.log")
        records.append((i, c, r, why, time.time() - t))
        print(f"{i:3d} {c.cls:10s} {classify(c, r, why)[0]:9s} {time.time() - t:5.1f}s {c.desc[:80]}", flush=True)
    if batch_pid:
        deadline = t0 + SCENE_TIMEOUT_S + 120
        while time.time() < deadline and os.waitpid(batch_pid, os.WNOHANG) == (0, 0): time.sleep(2)
        if time.time() >= deadline: os.kill(batch_pid, signal.SIGKILL); os.waitpid(batch_pid, 0)
        done = {}
        for line in (batch_out.read_text().splitlines() if batch_out.exists() else []):
            rec = json.loads(line); done[rec["i"]] = rec.get("r")
        for i, c in scene:
            r = done.get(i); why = "" if r else ("timeout after the scene batch's time limit" if i in done else "scene batch did not reach it")
            records.append((i, c, r, why, 0.0))
        noise = (root / "scene.log").read_text(errors="replace") if (root / "scene.log").exists() else ""
    report(records, a, root, t0, noise if batch_pid else None)
    if not a.keep: shutil.rmtree(root, ignore_errors=True)


def report(records, a, root, t0, noise) -> None:
    from go2bench.core.provenance import versions
    kinds = ["clear", "cryptic", "traceback", "silent", "blow-up"]
    rows, out = {}, []
    for i, c, r, why, dt in sorted(records, key=lambda x: x[0]):
        kind, detail = classify(c, r, why)
        rows.setdefault(c.cls, dict.fromkeys(kinds, 0))[kind] += 1
        out.append({"id": i, "class": c.cls, "description": c.desc, "command": (["go2bench"] + [str(x) for x in c.args]) if c.args
                    else "python API (see benchmarks/bad_inputs.py)", "expect": c.expect, "outcome": kind, "detail": detail,
                    "output": ((r or {}).get("output") or "")[:300], "traceback": ((r or {}).get("exc") or "")[-1500:] or None,
                    "exit_code": (r or {}).get("exit"), "rss_growth_mb": round((r or {}).get("rss_growth_mb", 0), 1), "wall_s": round(dt, 2)})
    hdr = f"{'class':48s} {'tried':>5s} " + " ".join(f"{k:>9s}" for k in kinds)
    print("\n" + hdr + "\n" + "-" * len(hdr))
    tot = dict.fromkeys(kinds, 0)
    for cls in CLASSES:
        if cls in rows:
            print(f"{CLASSES[cls]:48s} {sum(rows[cls].values()):5d} " + " ".join(f"{rows[cls][k]:9d}" for k in kinds))
            for k in kinds: tot[k] += rows[cls][k]
    print("-" * len(hdr) + f"\n{'total':48s} {sum(tot.values()):5d} " + " ".join(f"{tot[k]:9d}" for k in kinds))
    log_noise = None if noise is None else {s: noise.count(s) for s in ("does not have effect", "exceeds joint limits")}
    if log_noise: print(f"log noise in the scene batch (issue item 11): {log_noise}")
    for o in out:
        if o["outcome"] != "clear":
            print(f"\n[{o['outcome']}] #{o['id']} {o['class']}: {o['description']}\n  {' '.join(o['command']) if isinstance(o['command'], list) else o['command']}\n  -> {o['detail']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"versions": versions(), "config": {
        "only": a.only, "timeout_s": TIMEOUT_S, "address_space_limit_gb": LIMIT_GB, "blowup_gb": BLOWUP_GB,
        "wall_s": round(time.time() - t0, 1), "load_avg": os.getloadavg(), "cpus": os.cpu_count(), "log_noise": log_noise},
        "totals": {"tried": sum(tot.values()), **tot}, "per_class": rows, "cases": out}, indent=1))
    print(f"\nwrote {RESULTS} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
