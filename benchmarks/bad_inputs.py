"""Bad-input benchmark (issue 13): every bad input must give one clear ``Error:`` line and exit 1.

Builds a temp folder (a synthetic dataset and broken copies, a short training run, teacher zips with pickle
payloads, result files, YAML alias bombs) and runs ~240 bad inputs over the issue's classes: CLI cases through
``click.testing.CliRunner`` against ``go2bench.cli.main``, Python-API cases directly. Each case runs in a forked
child (modules imported once) with its own cwd, RLIMIT_AS = its size + 3 GB, a timeout, and Genesis' ``init``
replaced by a guard: an input that gets as far as building a scene was accepted. Cases needing a real scene
(env after close, teach, a NaN agent) run one after the other in one background child. Outcomes: clear (exit
!= 0, last line ``Error:``/a usage error, no traceback, names the option, field or file), cryptic (names none,
or no one-line message), traceback, silent (exit 0, reached the scene build, or a payload ran), blow-up (> 1 GB
growth, MemoryError at the limit, or killed).    Usage: python benchmarks/bad_inputs.py [--only CLASS] [--list] [--keep]
"""

from __future__ import annotations

import argparse, base64, dataclasses, io, json, os, pickle, re, resource, select, shlex, shutil, signal, sys  # noqa: E401
import tempfile, time, traceback, zipfile  # noqa: E401
from pathlib import Path
from typing import Any, Callable

import numpy as np

RESULTS = Path(__file__).parent / "results" / "bad_inputs.json"
REPO = Path(__file__).resolve().parent.parent
ZOO = REPO / "go2bench" / "zoo" / "Go2Walk-v0"
TIMEOUT_S, SCENE_TIMEOUT_S, LIMIT_GB, BLOWUP_GB = 120, 720, 3, 1
KINDS = ["clear", "cryptic", "traceback", "silent", "blow-up"]
CLASSES = {"checkpoint": "1 code execution from checkpoints", "data": "2 broken datasets (data check, train)",
           "range": "3 numeric options and config fields", "yaml": "4 YAML alias bombs and tags",
           "resume": "5 resume conflicts, corrupt checkpoints, devices", "num_envs": "6 huge num_envs",
           "results": "7 leaderboard files, eval agents", "collect": "8 collect output folder and resume",
           "env_close": "9 env after close", "pipeline": "10 pipeline --set", "files": "unknown keys, missing files, types"}
H0, H1, HJ = "trajectories_env_0000.h5", "trajectories_env_0001.h5", "trajectories_env_0001.json"


@dataclasses.dataclass
class Case:
    cls: str
    desc: str
    args: list | None = None       # go2bench CLI arguments, or
    fn: Callable | None = None     # a Python-API case: raising is the expected outcome
    names: tuple = ()              # the error text must contain one of these (option, field or file)
    expect: str = "error"          # error | warn (exit 0 with a warning naming it is right) | safe (accepting is right)
    setup: Callable | None = None  # (case folder) -> None, before the command
    check: Callable | None = None  # (output, case folder) -> problem or None, after it
    scene: bool = False            # needs a real Genesis scene (the background batch)


class ReachedScene(BaseException):
    """Raised by the Genesis guard: the input was accepted up to building a scene."""


class Payload:  # unpickling it runs `touch MARKER`
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f"touch {self.marker}",))


# ------------------------------------------------------------------------------------------- fixtures
def torch_bytes(obj) -> bytes:
    import torch
    buf = io.BytesIO(); torch.save(obj, buf); return buf.getvalue()  # noqa: E702


def sb3_zip(path: Path, policy: bytes, marker: Path | None = None, card: bool = False) -> None:
    """A stable-baselines3 model zip; ``marker``: its data JSON carries a cloudpickle payload."""
    data = {"num_timesteps": 64, "_n_updates": 0}
    if marker:
        data["policy_class"] = {":type:": "<class 'abc.ABCMeta'>", ":serialized:": base64.b64encode(pickle.dumps(Payload(marker))).decode()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        for name, blob in {"data": json.dumps(data), "policy.pth": policy, "pytorch_variables.pth": torch_bytes({})}.items():
            z.writestr(name, blob)
    card and shutil.copy(ZOO / "model_card.json", path.parent)


def _h5(fn):  # edit history 1 of a dataset folder with h5py
    def go(d):
        import h5py
        with h5py.File(d / H1, "r+") as f: fn(f)
    return go


def _put(g, key, arr): del g[key]; g.create_dataset(key, data=arr)  # noqa: E702,E704


def _json(rel: str, fn):  # edit a JSON file of a dataset folder ("META": the dataset metadata)
    def go(d):
        p = d / (f"{d.name}.json" if rel == "META" else rel); obj = json.loads(p.read_text()); fn(obj); p.write_text(json.dumps(obj))  # noqa
    return go


STEP = lambda f: f["0-249/step_num"][()]  # noqa: E731
BREAKS: dict[str, tuple[Callable, tuple]] = {  # variant -> (break a good dataset folder, names the message should hold)
    "overlap": (_h5(lambda f: f.copy(f["250-499"], "100-349")), (H1,)),
    "gap": (_h5(lambda f: f.__delitem__("250-499")), (H1,)),
    "bad_group_name": (_h5(lambda f: f.move("250-499", "chunk_1")), (H1,)),
    "float_step_num": (_h5(lambda f: _put(f["0-249"], "step_num", STEP(f).astype(np.float32))), (H1,)),
    "fractional_step_num": (_h5(lambda f: _put(f["0-249"], "step_num", STEP(f) + 0.5)), (H1,)),
    "negative_step_num": (_h5(lambda f: _put(f["0-249"], "step_num", STEP(f) - 7)), (H1,)),
    "missing_step_num": (_h5(lambda f: f["0-249"].__delitem__("step_num")), (H1,)),
    "reward_2d": (_h5(lambda f: _put(f["0-249"], "reward", np.zeros((250, 2), np.float32))), (H1,)),
    "nan_reward": (_h5(lambda f: f["0-249/reward"].__setitem__(5, np.nan)), (H1,)),
    "inf_observation": (_h5(lambda f: f["250-499/proprio_observation"].__setitem__((3, 2), np.inf)), (H1,)),
    "short_action": (_h5(lambda f: _put(f["0-249"], "action", f["0-249/action"][:240])), (H1,)),
    "wide_observation": (_h5(lambda f: _put(f["0-249"], "proprio_observation", np.zeros((250, 34), np.float32))), (H1,)),
    "group_shorter_than_name": (_h5(lambda f: [_put(f["0-249"], k, f["0-249"][k][:200]) for k in list(f["0-249"])]), (H1,)),
    "empty_group": (_h5(lambda f: f.create_group("1000-1249")), (H1,)),
    "missing_metadata": (lambda d: (d / f"{d.name}.json").unlink(), ("missing_metadata.json",)),
    "metadata_no_action_dim": (_json("META", lambda m: m.pop("action_dim")), ("action_dim",)),
    "metadata_not_json": (lambda d: (d / f"{d.name}.json").write_text("{not json"), ("metadata_not_json.json",)),
    "history_json_task_name": (_json(HJ, lambda m: m.update(task_name="other")), ("task_name",)),
    "history_json_action_dim": (_json(HJ, lambda m: m.update(action_dim=13)), ("action_dim",)),
    "history_json_missing": (lambda d: (d / HJ).unlink(), (HJ,)),
    "truncated_h5": (lambda d: os.truncate(d / H1, (d / H1).stat().st_size // 2), (H1,)),
    "empty_h5": (lambda d: os.truncate(d / H1, 0), (H1,)),
    "text_h5": (lambda d: (d / H1).write_text("not an HDF5 file\n"), (H1,)),
    "no_h5_files": (lambda d: [(d / h).unlink() for h in (H0, H1)], ("no_h5_files",)),
}
PLUGIN = ("import numpy as np\nNOT_CALLABLE = 5\ndef raises(e, c, d, s): raise RuntimeError('boom from plug-in')\n"
          "def none(e, c, d, s): return None\ndef no_act(e, c, d, s): return object()\nclass Nan:\n"
          "    def reset(self, num_envs=None, env_id=None, seed=None): pass\n    def act(self, obs, prev_reward=None, "
          "episode_start=None): return np.full((len(obs), 12), np.nan, np.float32)\ndef nan(e, c, d, s): return Nan()\n")
AGENTS = {"raises": "raises", "notcallable": "NOT_CALLABLE", "none": "none", "noact": "no_act", "nan": "nan"}


def bomb(inline: bool = False) -> str:
    """Nine levels of nine aliases: ~400 bytes that expand to 9**9 items."""
    rows = ["&a [lol,lol,lol,lol,lol,lol,lol,lol,lol]"] + [f"&{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)]
    return "[" + ", ".join(rows) + "]" if inline else "".join(f"{chr(97 + i)}: {r}\n" for i, r in enumerate(rows))


def build_fixtures(fx: Path) -> dict:
    import torch
    from click.testing import CliRunner
    from go2bench.cli import main
    from go2bench.teachers.ppo import PPOConfig
    from go2bench.testing import write_synthetic_dataset
    os.chdir(fx); mk = fx / "PWNED"; (fx / "cfg").mkdir()  # noqa: E702
    for v, (brk, _) in [("good", (lambda d: None, ())), *BREAKS.items()]:
        brk(write_synthetic_dataset(fx / "data", v, n_histories=2, steps=1000, group_size=250, env_id="Go2Walk-v0"))
    for v in ["good", *BREAKS, "missing_dir"]:
        (fx / "cfg" / f"{v}.yaml").write_text(f"{v}:\n  path: {v}\n  group: go2\n")
    res = CliRunner().invoke(main, train_args(fx, "good", "--max_steps", "12", "--epochs", "2", "--save_every", "1"))
    assert res.exit_code == 0, res.output
    shutil.copytree("runs/r", fx / "run")  # epoch_0001.pt (step 8), final.pt (step 12), latest.json, metrics.jsonl
    state = torch.load(ZOO / "policy.pt", weights_only=True); policy = torch_bytes(state)  # noqa: E702
    sb3_zip(fx / "payload" / "final.zip", policy, mk)                  # no card: only --trust-checkpoint may load it
    sb3_zip(fx / "payload_card" / "final.zip", policy, mk, card=True)  # a card: only tensors are read
    sb3_zip(fx / "pth_payload" / "final.zip", torch_bytes(Payload(mk)), card=True)
    sb3_zip(fx / "teach_run" / "checkpoints" / "ppo_64_steps.zip", policy, mk)
    (fx / "teach_run" / "ppo_config.json").write_text(json.dumps({"env_id": "Go2Walk-v0", "ppo": dataclasses.asdict(PPOConfig()), "task": {}}))
    for name, blob in {"pt_payload": torch_bytes(Payload(mk)), "text": b"hello\n", "truncated": policy[:1000], "bad_card": policy,
                       "random_weights": torch_bytes({k: torch.randn(3, 3) for k in state})}.items():
        (fx / name).mkdir(); (fx / name / "policy.pt").write_bytes(blob); shutil.copy(ZOO / "model_card.json", fx / name)  # noqa: E702
    (fx / "bad_card" / "model_card.json").write_text("{oops")
    (fx / "vintix_payload.pt").write_bytes(torch_bytes({"format": "go2bench-vintix", "x": Payload(mk)}))
    (fx / "vintix_truncated.pt").write_bytes((fx / "run" / "final.pt").read_bytes()[:5000])
    (fx / "vintix_other.pt").write_bytes(torch_bytes({"a": torch.zeros(2)}))
    (fx / "afile").write_text("a regular file\n"); (fx / "png.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe" * 10)  # noqa: E702
    (fx / "bomb.yaml").write_text(bomb()); (fx / "bomb_field.yaml").write_text(bomb() + "good: {path: good, group: go2, collect: *i}\n")  # noqa
    (fx / "tag.yaml").write_text(f"dt: !!python/object/apply:os.system ['touch {mk}']\n")
    info = fx / "plugins" / "bad_agents-0.0.dist-info"; info.mkdir(parents=True); (fx / "plugins" / "bad_agents.py").write_text(PLUGIN)  # noqa
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bad-agents\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text("[go2bench.agents]\nimportfail-agent = no_such_module_xyz:make\n"
                                           + "".join(f"{n}-agent = bad_agents:{a}\n" for n, a in AGENTS.items()))
    shutil.copy(REPO / "tests/fixtures/results/random_Go2Walk-v0.json", fx / "result.json")
    return {}


# ------------------------------------------------------------------------------------------- cases
def train_args(fx: Path, cfg: str | None = "good", *extra) -> list:
    """A short valid `train` (with a dataset variant's config, a .yaml path, or None: no config) plus ``extra``."""
    data = [] if cfg is None else ["--dataset_config_paths", cfg if cfg.endswith(".yaml") else f"{fx}/cfg/{cfg}.yaml"]
    return ["train", *data, "--data_dir", f"{fx}/data", "--model", "tiny", "--context_len", "32", "--batch_size", "2",
            "--max_steps", "2", "--num_workers", "0", "--no_progress_bar", "--out_dir", "runs", "--name", "r", *extra]


BASES = {"EVAL": "eval --agent random --num-envs 1 --episodes 1 --max-episode-steps 5 --no-progress",
         "TEACH": "teach --num-envs 2 --total-steps 48 --eval-episodes 0 --quiet --no-progress-bar --out t",
         "COLLECT": "collect --env Go2Walk-v0 --num-histories 2 --steps-per-history 100 --no-progress-bar --out ds",
         "ROLLOUT": "rollout --env Go2Walk-v0 --agent random --num-envs 1 --steps 5", "LB": "leaderboard r.json --out lb"}


def cmd(text: str, fx: Path) -> list[str]:
    """A command line: EVAL, TEACH, COLLECT, ROLLOUT, LB, TRAIN (TRAIN0: without a dataset config) expand to short
    valid commands; FX is the fixtures folder, MK the payload marker, BOMB an inline alias bomb."""
    bases = {**{k: v.split() for k, v in BASES.items()}, "TRAIN": train_args(fx), "TRAIN0": train_args(fx, None),
             "RESUME": train_args(fx, "good", "--max_steps", "12", "--epochs", "2", "--save_every", "1", "--resume")}
    text = text.replace("FX", str(fx)).replace("MK", str(fx / "PWNED")).replace("BOMB", shlex.quote(bomb(inline=True)))
    return [a for tok in shlex.split(text) for a in bases.get(tok, [tok])]


def write(spec: str | None) -> Callable | None:
    """``FILE=TEXT`` (\\n for newlines): write it into the case folder."""
    return spec and (lambda d: (d / spec.split("=", 1)[0]).write_text(spec.split("=", 1)[1].replace("\\n", "\n")))


def result_file(mutate: Callable | None = None, raw: str | None = None) -> Callable:
    """``r.json``: the fixture result file changed by ``mutate``, or ``raw`` text."""
    def go(d):
        base = json.loads((d.parent.parent / "fx" / "result.json").read_text()); mutate and mutate(base)  # noqa: E702
        (d / "r.json").write_text(raw if raw is not None else json.dumps(base))
    return go


def md_table_ok(out: str, d: Path) -> str | None:
    """leaderboard.md has a header, a rule and one row, each with the same number of unescaped pipes."""
    p = d / "lb" / "leaderboard.md"
    table = [ln for ln in p.read_text().split("\n")[2:] if ln and not ln.startswith("Normalised")] if p.exists() else []
    ok = len(table) == 3 and all(ln.startswith("|") for ln in table) and len({len(re.findall(r"(?<!\\)\|", ln)) for ln in table}) == 1
    return None if ok or not p.exists() else f"the Markdown table is broken: {table!r}"[:300]


def metrics_unique(out: str, d: Path) -> str | None:
    steps = [json.loads(ln).get("step") for ln in (d / "runs/r/metrics.jsonl").read_text().splitlines() if '"loss"' in ln]
    return None if len(steps) == len(set(steps)) else f"metrics.jsonl repeats steps after the resume: {steps}"


def copy_run(mutate: Callable = lambda r: None) -> Callable:
    return lambda d: (shutil.copytree(d.parent.parent / "fx" / "run", d / "runs" / "r"), mutate(d / "runs" / "r"))


def fake_ds(meta, name: str = "ds") -> Callable:
    """A collected-dataset folder ``ds`` with one history file and ``<name>.json`` (None: none)."""
    def go(d):
        (d / "ds").mkdir(); (d / "ds" / H0).write_bytes(b"")  # noqa: E702
        meta is None or (d / "ds" / f"{name}.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
    return go


def env(S: dict, n: int = 0):
    """The scene batch's shared env (n = 0: WalkEnv, else a vector env of n)."""
    if n not in S:
        import gymnasium
        S[n] = gymnasium.make_vec("Go2Walk-v0", num_envs=n) if n else gymnasium.make("Go2Walk-v0"); S[n].reset(seed=0)  # noqa: E702
    return S[n]


# One CLI case per line: class | command (see cmd) | names, one of which the error must contain | setup: FILE=TEXT
TABLE = """
checkpoint | EVAL --agent teacher:FX/payload/final.zip | final.zip
checkpoint | EVAL --agent FX/payload/final.zip | final.zip
checkpoint | EVAL --agent teacher:FX/payload | payload
checkpoint | EVAL --agent teacher:FX/pth_payload/final.zip | final.zip
checkpoint | EVAL --agent teacher:FX/pt_payload | policy.pt
checkpoint | EVAL --agent teacher:FX/text | policy.pt
checkpoint | EVAL --agent teacher:FX/truncated | policy.pt
checkpoint | EVAL --agent teacher:FX/random_weights | policy.pt
checkpoint | EVAL --agent teacher:FX/bad_card | model_card.json
checkpoint | EVAL --agent teacher:FX/nonexistent.zip | nonexistent.zip
checkpoint | EVAL --agent vintix:FX/vintix_payload.pt | vintix_payload.pt
checkpoint | EVAL --agent vintix:FX/vintix_truncated.pt | vintix_truncated.pt
checkpoint | EVAL --agent vintix-nocontext:FX/vintix_other.pt | vintix_other.pt
checkpoint | EVAL --agent vintix:FX/afile | afile
checkpoint | COLLECT --teacher FX/payload/final.zip | final.zip
checkpoint | COLLECT --teacher FX/text/policy.pt | policy.pt
checkpoint | COLLECT --teacher FX/truncated/policy.pt | policy.pt
range | EVAL --random-score 5 --expert-score 5 | score
range | ROLLOUT --seed -1 | seed
yaml | EVAL --config FX/bomb.yaml | bomb.yaml
yaml | TRAIN0 --dataset_config_paths FX/bomb.yaml | bomb.yaml
yaml | TRAIN --model FX/bomb.yaml | bomb.yaml
yaml | TRAIN --model_override n_layers=BOMB | n_layers
yaml | data check --config FX/bomb.yaml | bomb.yaml
yaml | data check --config FX/bomb_field.yaml | bomb_field.yaml
yaml | collect --config FX/bomb.yaml | bomb.yaml
yaml | pipeline --print-config --set eval.agents=BOMB | eval.agents
yaml | EVAL --config FX/tag.yaml | tag.yaml
yaml | data check --config FX/tag.yaml | tag.yaml
yaml | TRAIN --model FX/tag.yaml | tag.yaml
yaml | pipeline --print-config --set "train.lr=!!python/object/apply:os.system ['touch MK']" | train.lr
yaml | EVAL --config FX/png.yaml | png.yaml
resume | TRAIN --device cuda | device
resume | TRAIN --device cuda:3 | device
resume | TRAIN --device mps | device
resume | EVAL --agent teacher --device cuda | device
resume | EVAL --device tpu | device
resume | EVAL --backend gpu | backend
resume | COLLECT --backend gpu | backend
num_envs | EVAL --num-envs 1000000 | num_envs, num-envs
num_envs | ROLLOUT --num-envs 10000000 | num_envs, num-envs
num_envs | TEACH --num-envs 10000000 | num_envs, num-envs
num_envs | COLLECT --num-histories 10000000 | num_envs, num-histories
num_envs | pipeline --print-config --set eval.num_envs=1000000 | num_envs
collect | COLLECT --out FX/afile/ds | afile
collect | COLLECT --env-ids 5-2 | env-ids
collect | COLLECT --env-ids 0-99 | env-ids
collect | collect --config go2_dataset_config --out x | out
collect | collect --config c.yaml | p | c.yaml=g: {path: g, group: g, collect: {p: .nan}}
collect | collect --config c.yaml | nois | c.yaml=g: {path: g, group: g, collect: {nois: 1}}
collect | COLLECT --teacher FX/cfg | cfg
pipeline | pipeline --print-config --stages bogus | stages
files | data check nope | nope
files | data check FX/afile | afile
files | data check --config FX/cfg/missing_dir.yaml | missing_dir
files | TRAIN0 --dataset_config_paths nope.yaml | nope.yaml
files | TRAIN0 --dataset_config_paths c.yaml | grup | c.yaml=good: {path: good, grup: go2}
files | TRAIN0 --dataset_config_paths c.yaml | group | c.yaml=good: {path: good}
files | TRAIN0 --dataset_config_paths c.yaml | path | c.yaml=good: {path: /etc, group: g}
files | TRAIN0 --dataset_config_paths c.yaml | c.yaml | c.yaml=- good
files | TRAIN --model missing.yaml | missing.yaml
files | TRAIN --model m.yaml | n_layer | m.yaml=n_layer: 2
files | TRAIN --model_override n_layer=2 | n_layer
files | TRAIN --out_dir FX/afile/runs | afile
files | EVAL --config w.yaml | dtt | w.yaml=dtt: 0.02
files | EVAL --config w.yaml | lin_vel | w.yaml=commands: {lin_vel: [0, 1]}
files | EVAL --config w.yaml | dt | w.yaml=dt: fast
files | EVAL --config w.yaml | dt | w.yaml=dt: 0.02\\ndt: 0.05
files | EVAL --config w.yaml | w.yaml | w.yaml=dt: [0.01, 0.02
files | EVAL --out FX/afile/r.json | afile
files | ROLLOUT --out FX/afile/r.json | afile
files | TEACH --out FX/afile/t | afile
"""


def cases(fx: Path) -> list[Case]:
    from go2bench.collect.config import CollectConfig
    C, mk = [], fx / "PWNED"
    add = lambda cls, desc, args=None, **kw: C.append(Case(cls, desc, args and cmd(args, fx), **kw))  # noqa: E731
    for line in filter(None, TABLE.splitlines()):
        cls, args, names, *setup = [x.strip() for x in line.split("|", 3)]
        add(cls, args + (f"  (with {setup[0]})" if setup else ""), args, names=tuple(n.strip() for n in names.split(",")),
            setup=write(setup[0] if setup else None))
    add("checkpoint", "EVAL --agent teacher:FX/payload_card/final.zip (a card: only tensors read; accepting is right)",
        "EVAL --agent teacher:FX/payload_card/final.zip", expect="safe")
    for target_kl, what in [("", "pickle payload in the checkpoint zip (accepting is right)"), ("--target-kl 0.05", "another target_kl")]:
        add("checkpoint" if not target_kl else "resume", f"TEACH --resume {target_kl}: {what}", f"TEACH --resume --total-steps 64 {target_kl}",
            setup=lambda d: shutil.copytree(fx / "teach_run", d / "t"), scene=True, expect="error" if target_kl else "safe", names=("target_kl",))
    add("resume", "TEACH --device cuda", "TEACH --device cuda", scene=True, names=("device",))
    for v, (_, names) in BREAKS.items():  # 2: `data check` and `train` on each broken copy
        add("data", f"data check {v}", f"data check FX/data/{v}", names=names)
        add("data", f"TRAIN on {v}", f"TRAIN0 --dataset_config_paths FX/cfg/{v}.yaml", names=names)
    for base, opts in [("TRAIN --", "grad_clip=-1 grad_clip=nan min_lr_ratio=-50 min_lr_ratio=2 lr=nan lr=-1 lr=inf beta1=1 beta2=nan "
                                    "weight_decay=-1 max_minutes=nan context_len=1 batch_size=0 seed=4294967296"),
                       ("TRAIN --model_override ", "n_layers=0 dropout=1.5 dropout=.nan n_heads=3"),
                       ("EVAL --", "episodes=-1 num-envs=0 max-episode-steps=0 random-score=nan expert-score=inf seeds=-1"),
                       ("TEACH --", "total-steps=0 checkpoint-every=0 target-kl=-1 target-kl=nan max-minutes=nan log-every=inf seed=-1"),
                       ("COLLECT --", "num-histories=0 steps-per-history=0 p=0 p=nan f=1 max-perf=2 seed=-1")]:
        for kv in opts.split():  # 3: one numeric option out of range
            opt, val = kv.split("=", 1)
            args = base + (kv if "override" in base else f"{opt} {val}")
            add("range", args, args, names={"p": ("noise-power",), "f": ("noise-floor",)}.get(opt, (opt,)))
    for yml in ["dt: 0", "dt: .nan", "substeps: 0", "episode_length_s: .inf", "tracking_sigma: -1", "commands: {lin_vel_x: [1.0, 0.0]}",
                "commands: {lin_vel_x: [.nan, .nan]}", "rewards: {tracking_lin_vel: .nan}", "randomization: {friction_range: [-1, 1]}"]:
        add("range", f"EVAL --config w.yaml (with {yml})", "EVAL --config w.yaml", setup=write(f"w.yaml={yml}"),
            names=(re.findall(r"(\w+): [^{]", yml)[-1],))
    for kv in ("train.lr=-1 train.grad_clip=-1 train.min_lr_ratio=-50 collect.p=.nan collect.seed=-1 eval.episodes=0 eval.seeds=[] "
               "eval.seeds=[-1] eval.agents=[nosuch] gpus=0 reward_scale=-1 reward_scale=.inf train_gpus=2 envs=[Nope-v0] "
               "train.bogus=1 bogus.x=1 train.data_dir=x train=1 noequals train.lr=abc").split():  # 10
        add("pipeline", f"pipeline --set {kv}", f"pipeline --print-config --out p --set {kv}", names=(kv.split("=")[0],))
    for opt, val in [("context_len", "48"), ("batch_size", "4"), ("lr", "0.001"), ("seed", "3"), ("trajectory_sparsity", "64"),
                     ("model", "seed"), ("model_override", "n_layers=3")]:  # 5: --resume with settings the checkpoint does not have
        add("resume", f"RESUME --{opt} {val}", f"RESUME --{opt} {val}", setup=copy_run(), names=(opt.replace("model_override", "n_layers"),))
    add("resume", "RESUME --context_len 48 --lr 0.001 (both named)", "RESUME --context_len 48 --lr 0.001", setup=copy_run(),
        names=("context_len",), check=lambda o, d: None if "lr =" in o else "the lr conflict is not named")
    for desc, mut in [("latest.json is garbage", lambda r: (r / "latest.json").write_text("{garbage")),
                      ("latest.json names a missing file", lambda r: (r / "latest.json").write_text('{"file": "nope.pt"}')),
                      ("latest.json names ../../afile", lambda r: (r / "latest.json").write_text('{"file": "../../afile"}')),
                      ("final.pt truncated", lambda r: os.truncate(r / "final.pt", 4000)),
                      ("final.pt holds a pickle payload", lambda r: (r / "final.pt").write_bytes(torch_bytes(Payload(mk)))),
                      ("final.pt is not a go2bench checkpoint", lambda r: (r / "final.pt").write_bytes(torch_bytes({"a": 1})))]:
        add("resume", f"RESUME, {desc} (right: a warning, then epoch_0001.pt)", "RESUME", expect="warn", setup=copy_run(mut),
            names=("latest.json", "final.pt"), check=metrics_unique)
    add("resume", "RESUME, every checkpoint corrupt", "RESUME", names=("final.pt", "epoch_0001.pt"),
        setup=copy_run(lambda r: [os.truncate(r / n, 100) for n in ("final.pt", "epoch_0001.pt")]))
    for n in (10**6, 2**40, 0, -3, 2.5, "4", True):  # 6
        add("num_envs", f"gymnasium.make_vec('Go2Walk-v0', num_envs={n!r})", fn=lambda n=n: env({}, n), names=("num_envs",))
    for field, mut in [("agent", lambda r: r.update(agent=5)), ("seeds", lambda r: r.update(seeds="0,1")),
                       ("mean_return", lambda r: r.update(mean_return="0.9")), ("normalized_score", lambda r: r.update(normalized_score=np.nan)),
                       ("per_seed", lambda r: r.update(per_seed=[])), ("returns", lambda r: r["returns"].pop()),
                       ("config.episodes", lambda r: r["config"].update(episodes=0)), ("format", lambda r: r.pop("format"))]:  # 7
        add("results", f"LB: bad field {field}", "LB", setup=result_file(mut), names=("r.json",))
    for desc, raw in [("a JSON list", "[1, 2]"), ("not JSON", "agent: x"), ("an empty file", ""), ("JSON nested 10**5 deep", "[" * 10**5)]:
        add("results", f"LB: r.json is {desc}", "LB", setup=result_file(raw=raw), names=("r.json",))
    for desc, mut in [("agent with '|'", lambda r: r.update(agent="a|b", agent_spec="a|b")), ("env with '|'", lambda r: r.update(env="Go2|Walk")),
                      ("agent with a newline", lambda r: r.update(agent="a\nb", agent_spec="a\nb"))]:
        add("results", f"LB: {desc} (the table must stay intact)", "LB", setup=result_file(mut), expect="safe", check=md_table_ok)
    add("results", "LB r.json (the same result twice)", "LB r.json", setup=result_file(), names=("r.json",))
    for spec in ("''", "nosuch", "random:ckpt.pt", ":x", *(f"{a}-agent" for a in [*AGENTS, "importfail"] if a != "nan")):
        add("results", f"EVAL --agent {spec}", f"EVAL --agent {spec}", names=(spec.split(":")[0].strip("'") or "agent",))
    add("results", "EVAL --agent nan-agent (a plug-in that acts NaN)", "EVAL --agent nan-agent", scene=True, names=("nan-agent",))
    ident = lambda **kw: {"collection": dataclasses.asdict(CollectConfig(**{"num_histories": 2, "steps_per_history": 100, **kw})),  # noqa
                          "teacher": {"sha256": "00"}}
    for desc, args, meta, names in [("steps_per_history differs", "", ident(steps_per_history=50), "steps_per_history"),
                                    ("seed differs", "--seed 1", ident(), "seed"), ("another teacher", "", ident(), "teacher"),
                                    ("no metadata", "", None, "ds.json"), ("metadata not JSON", "", "{oops", "ds.json")]:  # 8
        add("collect", f"COLLECT --resume {args} ({desc})", f"COLLECT --resume {args}", setup=fake_ds(meta), names=(names,))
    add("collect", "COLLECT --resume --p 0.3 (folder renamed)", "COLLECT --resume --p 0.3", setup=fake_ds(ident(), "old"), names=("old.json",))
    add("collect", "COLLECT into a dataset without --resume", "COLLECT", setup=fake_ds(ident()), names=("resume",))
    for desc, fn in [("WalkEnv.step with NaN actions", lambda S: env(S).step(np.full(12, np.nan, np.float32))),  # 9
                     ("WalkEnv.step after close()", lambda S: (env(S).close(), env(S).step(np.zeros(12, np.float32)))),
                     ("WalkEnv.reset after close()", lambda S: env(S).reset(seed=0)),
                     ("vector env step after close()", lambda S: (env(S, 2).close(), env(S, 2).step(np.zeros((2, 12), np.float32)))),
                     ("vector env reset after close()", lambda S: env(S, 2).reset(seed=0))]:
        add("env_close", desc, fn=fn, scene=True, names=("close", "nan"))
    add("files", "LB --out FX/afile/lb", "leaderboard r.json --out FX/afile/lb", setup=result_file(), names=("afile",))
    add("files", "LB --datasets FX/cfg (no histories)", "LB --datasets FX/cfg", setup=result_file(), names=("cfg",))
    return C


# ------------------------------------------------------------------------------------------- running
def _vm() -> dict:
    return {ln.split(":")[0]: int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith(("VmSize", "VmPeak"))}


def run_one(case: Case, folder: Path, fx: Path, state: dict) -> dict:
    """Run one case in this process (a child): the raw facts that :func:`classify` judges."""
    folder.mkdir(parents=True, exist_ok=True); os.chdir(folder); case.setup and case.setup(folder)  # noqa: E702
    vm0, rss0, r = _vm(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, {"exit": None, "output": "", "exc": None, "scene": False}
    try:
        if case.args is not None:
            from click.testing import CliRunner
            from go2bench.cli import main
            res = CliRunner().invoke(main, case.args, catch_exceptions=True)
            r.update(exit=res.exit_code, output=res.output)
            if res.exception is not None and not isinstance(res.exception, SystemExit):
                r["exc"] = "".join(traceback.format_exception(*res.exc_info))[-3000:]
        else:
            r.update(exit=0, output=f"returned {type(case.fn(state) if case.scene else case.fn()).__name__}")
    except ReachedScene:
        r["scene"] = True
    except Exception as e:  # noqa: BLE001 - an API case raising is the expected outcome, unless it is a crash
        r.update(exit=1, output=f"Error: {type(e).__name__}: {e}")
        r["exc"] = None if isinstance(e, (ValueError, RuntimeError, OSError, MemoryError)) else traceback.format_exc()[-3000:]
    vm1 = _vm()
    r["rss_growth_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    r["at_limit"] = (vm1["VmPeak"] - max(vm0["VmPeak"], vm0["VmSize"])) / 2**20 > LIMIT_GB - 0.5
    r["payload_ran"] = (fx / "PWNED").exists() and not (fx / "PWNED").unlink()
    if case.check and not r["scene"] and r["exc"] is None:
        try:
            r["check"] = case.check(r["output"], folder)
        except Exception as e:  # noqa: BLE001
            r["check"] = f"check failed: {e!r}"
    return r


def fork(fn: Callable[[], Any], timeout: float, log: Path, limit: bool = True) -> tuple[Any, str]:
    """``fn()`` in a forked child (stdout/stderr to ``log``, Genesis guarded): (its JSON-able result or None, why not)."""
    rd, wr = os.pipe(); sys.stdout.flush(); sys.stderr.flush(); pid = os.fork()  # noqa: E702
    if pid == 0:
        os.close(rd); fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC); os.dup2(fd, 1); os.dup2(fd, 2)  # noqa: E702
        try:
            if limit:
                resource.setrlimit(resource.RLIMIT_AS, (_vm()["VmSize"] * 1024 + LIMIT_GB * 2**30, resource.getrlimit(resource.RLIMIT_AS)[1]))
            import go2bench.envs.genesis_runtime as gr
            orig = gr.init

            def guard(backend="cpu"):  # the GPU backend's own checks run; a CPU scene build is "accepted"
                if backend != "cpu":
                    return orig(backend)
                raise ReachedScene()
            gr.init = guard
            out = json.dumps(fn()).encode()
        except BaseException as e:  # noqa: BLE001
            out = json.dumps({"internal": f"{type(e).__name__}: {e}"}).encode()
        with os.fdopen(wr, "wb") as f:
            f.write(out)
        os._exit(0)
    os.close(wr); chunks, deadline, why = [], time.time() + timeout, ""  # noqa: E702
    while not why:
        left = deadline - time.time()
        if left <= 0:
            os.kill(pid, signal.SIGKILL); why = f"timeout after {timeout:.0f} s"  # noqa: E702
        elif select.select([rd], [], [], left)[0]:
            chunks.append(os.read(rd, 1 << 16))
            if not chunks[-1]:
                break
    os.close(rd); status = os.waitpid(pid, 0)[1]  # noqa: E702
    why = why or (f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else "")
    try:
        return json.loads(b"".join(chunks)), why
    except ValueError:
        return None, why or "no result"


def classify(case: Case, r: dict | None, why: str) -> tuple[str, str]:
    """(outcome, detail) of a case's raw facts."""
    norm = lambda s: s.lower().replace("-", "_")  # noqa: E731
    if r is None or "internal" in r:
        return ("blow-up", why) if "signal 9" in why else ("silent", f"no error within the time limit ({why})") if "timeout" in why \
            else ("traceback", why or r["internal"])
    if r["payload_ran"]:
        return "silent", "the pickle payload RAN (code execution)"
    if r["rss_growth_mb"] > BLOWUP_GB * 1024 or (r["at_limit"] and "MemoryError" in (r["exc"] or r["output"])):
        return "blow-up", f"memory grew {r['rss_growth_mb']:.0f} MB (limit: +{LIMIT_GB} GB of address space)"
    if r["exc"]:
        return "traceback", r["exc"].strip().splitlines()[-1][:300]
    if r.get("check"):
        return "silent", r["check"]
    lines = [ln.strip() for ln in r["output"].splitlines() if ln.strip()]
    warns, errs = [ln for ln in lines if ln.lower().startswith("warning")], [ln for ln in lines if ln.lower().startswith("error:")]
    if r["scene"] or r["exit"] == 0:
        if case.expect == "safe":
            return "clear", "accepted (right for this input)"
        if case.expect == "warn" and r["exit"] == 0 and any(norm(n) in norm(" ".join(warns)) for n in case.names):
            return "clear", warns[0][:300]
        return "silent", "accepted: reached the Genesis scene build" if r["scene"] else "exit 0: " + (lines or [""])[-1][:250]
    if "Traceback" in r["output"]:
        return "traceback", lines[-1][:300]
    if not errs or not lines[-1].lower().startswith(("error:", "warning:")):
        return "cryptic", f"exit {r['exit']} without a one-line Error: message: {(lines or [''])[-1][:250]}"
    if case.names and not any(norm(n) in norm(" ".join(errs)) for n in case.names):
        return "cryptic", f"names none of {list(case.names)}: {errs[-1][:250]}"
    return "clear", errs[-1][:300]


def scene_batch(todo: list, root: Path) -> None:
    """The cases needing a real scene, one after the other in this process (Genesis initialised once)."""
    state: dict = {}
    for i, case in todo:
        with open(root / "scene.jsonl", "a") as f:
            f.write(json.dumps({"i": i}) + "\n")
        try:
            r = run_one(case, root / "cases" / f"{i:03d}", root / "fx", state)
        except Exception as e:  # noqa: BLE001
            r = {"internal": repr(e)}
        with open(root / "scene.jsonl", "a") as f:
            f.write(json.dumps({"i": i, "r": r}) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=list(CLASSES), help="run one class")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (fixtures, case folders, logs)")
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bad_inputs_")); fx = root / "fx"  # noqa: E702
    todo = [(i, c) for i, c in enumerate(cases(fx)) if a.only in (None, c.cls)]
    if a.list:
        for i, c in todo:
            print(f"{i:3d} {c.cls:10s} {c.desc}")
        return shutil.rmtree(root)
    os.environ.pop("GO2BENCH_TRACEBACK", None); t0 = time.time(); fx.mkdir(); (root / "cases").mkdir()  # noqa: E702
    import click.testing, gymnasium, h5py, stable_baselines3, torch  # noqa: E401,F401  imported once, before forking
    import go2bench.cli, go2bench.collect.collector, go2bench.envs, go2bench.eval.leaderboard, go2bench.eval.protocol  # noqa: E401,F401
    import go2bench.teachers.ppo, go2bench.vintix.train  # noqa: E401,F401
    go2bench.envs.register_envs()
    res, why = fork(lambda: build_fixtures(fx), 600, root / "fixtures.log", limit=False)
    if res != {}:
        sys.exit(f"fixtures failed ({why}): {res}; see {root / 'fixtures.log'}")
    print(f"fixtures in {root} ({time.time() - t0:.0f} s)", flush=True)
    sys.path.insert(0, str(fx / "plugins"))  # the plug-in agents' entry points
    scene, records, batch, noise = [(i, c) for i, c in todo if c.scene], [], 0, None
    if scene and (batch := os.fork()) == 0:  # the scene cases in the background, while the fast cases run
        fd = os.open(root / "scene.log", os.O_WRONLY | os.O_CREAT); os.dup2(fd, 1); os.dup2(fd, 2)  # noqa: E702
        try:
            scene_batch(scene, root)
        finally:
            os._exit(0)
    for i, c in todo:
        if not c.scene:
            t = time.time()
            r, why = fork(lambda: run_one(c, root / "cases" / f"{i:03d}", fx, {}), TIMEOUT_S, root / "cases" / f"{i:03d}.log")
            records.append((i, c, r, why, time.time() - t))
            print(f"{i:3d} {c.cls:10s} {classify(c, r, why)[0]:9s} {time.time() - t:5.1f} s  {c.desc[:90]}", flush=True)
    if batch:
        while time.time() < t0 + SCENE_TIMEOUT_S and os.waitpid(batch, os.WNOHANG) == (0, 0):
            time.sleep(2)
        if time.time() >= t0 + SCENE_TIMEOUT_S:
            os.kill(batch, signal.SIGKILL); os.waitpid(batch, 0)  # noqa: E702
        lines = (root / "scene.jsonl").read_text().splitlines() if (root / "scene.jsonl").exists() else []
        done = {rec["i"]: rec.get("r") for rec in map(json.loads, lines)}
        for i, c in scene:
            why = "" if done.get(i) else "timeout: the scene batch ran out of time" if i in done else "not reached: the scene batch stopped"
            records.append((i, c, done.get(i), why, 0.0))
        log = (root / "scene.log").read_text(errors="replace") if (root / "scene.log").exists() else ""
        noise = {s: log.count(s) for s in ("does not have effect", "exceeds joint limits")}
    report(sorted(records, key=lambda x: x[0]), a, t0, noise)
    a.keep or shutil.rmtree(root, ignore_errors=True)


def report(records: list, a, t0: float, noise: dict | None) -> None:
    from go2bench.core.provenance import versions
    per, out = {}, []
    for i, c, r, why, dt in records:
        kind, detail = classify(c, r, why)
        per.setdefault(c.cls, dict.fromkeys(KINDS, 0))[kind] += 1
        r = r or {}
        out.append({"id": i, "class": c.cls, "description": c.desc, "expect": c.expect, "outcome": kind, "detail": detail,
                    "command": ["go2bench", *c.args] if c.args else "Python API: see cases() in benchmarks/bad_inputs.py",
                    "exit_code": r.get("exit"), "output": (r.get("output") or "")[:300], "traceback": (r.get("exc") or "")[-1500:] or None,
                    "rss_growth_mb": round(r.get("rss_growth_mb", 0.0), 1), "wall_s": round(dt, 2)})
    head = f"{'class':48s} {'tried':>5s} " + " ".join(f"{k:>9s}" for k in KINDS)
    print(f"\n{head}\n{'-' * len(head)}")
    total = dict.fromkeys(KINDS, 0)
    for cls, title in CLASSES.items():
        if cls in per:
            print(f"{title:48s} {sum(per[cls].values()):5d} " + " ".join(f"{per[cls][k]:9d}" for k in KINDS))
            total = {k: total[k] + per[cls][k] for k in KINDS}
    print(f"{'-' * len(head)}\n{'total':48s} {sum(total.values()):5d} " + " ".join(f"{total[k]:9d}" for k in KINDS))
    if noise is not None:
        print(f"log noise in the scene batch (issue item 11): {noise}")
    for o in out:
        if o["outcome"] != "clear":
            print(f"\n[{o['outcome']}] #{o['id']} {o['class']}: {o['description']}\n  -> {o['detail']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"versions": versions(), "config": {
        "only": a.only, "timeout_s": TIMEOUT_S, "scene_timeout_s": SCENE_TIMEOUT_S, "address_space_limit_gb": LIMIT_GB,
        "blowup_gb": BLOWUP_GB, "wall_s": round(time.time() - t0, 1), "load_avg": os.getloadavg(), "cpus": os.cpu_count(),
        "log_noise": noise}, "totals": {"tried": sum(total.values()), **total}, "per_class": per, "cases": out}, indent=1))
    print(f"\nwrote {RESULTS} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
