"""Bad-input benchmark (issue 13): ``python benchmarks/bad_inputs.py [--only CLASS] [--list] [--keep]``; JSON in RESULTS.

Builds fixtures in a temp folder, then runs ~250 bad inputs: CLI cases with ``click.testing.CliRunner`` against
``go2bench.cli.main``, Python-API cases directly, each in a forked child (modules imported once; own cwd; RLIMIT_AS = its
size + 3 GB; a timeout; Genesis' ``init`` replaced by a guard: an input that gets as far as a scene build was accepted;
cases needing a real scene run in one background child). Outcomes: clear (exit != 0, last line ``Error:`` or a usage
error, no traceback, names the option, field or file), cryptic (names none, or no one-line message), traceback, silent
(exit 0, reached the scene build, or a payload ran), blow-up (> 1 GB growth, MemoryError at the limit).
"""

from __future__ import annotations

import argparse, base64, contextlib, dataclasses, functools, importlib, io, json, os, pickle, re, resource  # noqa: E401
import select, shlex, shutil, signal, sys, tempfile, time, traceback, zipfile  # noqa: E401
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml
from click.testing import CliRunner

RESULTS, REPO = Path(__file__).parent / "results" / "bad_inputs.json", Path(__file__).resolve().parent.parent
ZOO, TIMEOUT_S, SCENE_TIMEOUT_S, LIMIT_GB, BLOWUP_GB = REPO / "go2bench" / "zoo" / "Go2Walk-v0", 120, 720, 3, 1
KINDS, H0, H1, HJ = ["clear", "cryptic", "traceback", "silent", "blow-up"], *(f"trajectories_env_000{n}" for n in ("0.h5", "1.h5", "1.json"))
CLASSES = {"checkpoint": "1 code execution from checkpoints", "data": "2 broken datasets (data check, train)",
           "range": "3 numeric options, config fields", "yaml": "4 YAML alias bombs and tags",
           "resume": "5 resume, corrupt checkpoints, devices", "num_envs": "6 huge num_envs",
           "results": "7 leaderboard files, eval agents", "collect": "8 collect output folder and resume",
           "env_close": "9 env after close", "pipeline": "10 pipeline --set", "files": "unknown keys, missing files, wrong types"}


@dataclasses.dataclass
class Case:
    cls: str
    desc: str
    args: list | None = None       # go2bench CLI arguments, or
    fn: Callable | None = None     # a Python-API case (raising is the expected outcome)
    names: tuple = ()              # the error text must contain one of these (option, field or file)
    expect: str = "error"          # error | warn (exit 0 with a warning naming it is right) | safe (accepting is right)
    setup: Callable | None = None  # (case folder) -> None, before the command
    check: Callable | None = None  # (output, case folder) -> problem or None, after it
    scene: bool = False            # needs a real Genesis scene (the background batch)


ReachedScene = type("ReachedScene", (BaseException,), {})  # raised by the Genesis guard: the input was accepted up to a scene build


class Payload:  # unpickling it runs `touch MARKER`
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f"touch {self.marker}",))


# ------------------------------------------------------------------------------------------- fixtures
torch_bytes = lambda obj: (buf := io.BytesIO(), importlib.import_module("torch").save(obj, buf), buf.getvalue())[2]  # noqa: E731
_h5 = lambda fn: lambda d: (f := importlib.import_module("h5py").File(d / H1, "r+"), fn(f), f.close())  # noqa: E731  edit history 1
_json = lambda rel, fn: lambda d: (p := d / (f"{d.name}.json" if rel == "META" else rel)).write_text(  # noqa: E731
    json.dumps(fn(json.loads(p.read_text()))))  # edit a JSON file of a dataset folder ("META": the dataset metadata)
_put = lambda g, key, arr: (g.__delitem__(key), g.create_dataset(key, data=arr))  # noqa: E731
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
    "short_action": (_h5(lambda f: _put(f["0-249"], "action", f["0-249/action"][:240])), (H1,)),
    "wide_observation": (_h5(lambda f: _put(f["0-249"], "proprio_observation", np.zeros((250, 34), np.float32))), (H1,)),
    "group_shorter_than_name": (_h5(lambda f: [_put(f["0-249"], k, f["0-249"][k][:200]) for k in list(f["0-249"])]), (H1,)),
    "missing_metadata": (lambda d: (d / f"{d.name}.json").unlink(), ("missing_metadata.json",)),
    "metadata_no_action_dim": (_json("META", lambda m: {k: v for k, v in m.items() if k != "action_dim"}), ("action_dim",)),
    "metadata_not_json": (lambda d: (d / f"{d.name}.json").write_text("{not json"), ("metadata_not_json.json",)),
    "history_json_task_name": (_json(HJ, lambda m: {**m, "task_name": "other"}), ("task_name",)),
    "history_json_action_dim": (_json(HJ, lambda m: {**m, "action_dim": 13}), ("action_dim",)),
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
ENTRY_POINTS = "[go2bench.agents]\nimportfail-agent = no_such_module_xyz:make\n" + "".join(f"{n}-agent = bad_agents:{f}\n" for n, f in zip(
    "raises notcallable none noact nan".split(), "raises NOT_CALLABLE none no_act nan".split()))


def bomb(inline: bool = False) -> str:
    """Nine levels of nine aliases: ~400 bytes that expand to 9**9 items."""
    rows = ["&a [lol,lol,lol,lol,lol,lol,lol,lol,lol]"] + [f"&{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)]
    return "[" + ", ".join(rows) + "]" if inline else "".join(f"{chr(97 + i)}: {r}\n" for i, r in enumerate(rows))


def build_fixtures(fx: Path) -> list[str]:
    """Everything the cases read, under ``fx``; returns the modules it imported (the parent imports them too)."""
    import torch
    from go2bench.agents.teacher import load_teacher
    from go2bench.cli import main
    from go2bench.teachers.ppo import PPOConfig
    from go2bench.testing import write_synthetic_dataset

    def sb3_zip(path: Path, pth: bytes, marker: Path | None = None, card: bool = False) -> None:  # marker: a pickle payload in data
        payload = {":type:": "<class 'abc.ABCMeta'>", ":serialized:": base64.b64encode(pickle.dumps(Payload(marker))).decode()}
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("data", json.dumps({"num_timesteps": 64, "_n_updates": 0, **({"policy_class": payload} if marker else {})}))
            z.writestr("policy.pth", pth); z.writestr("pytorch_variables.pth", torch_bytes({}))  # noqa: E702
        card and shutil.copy(ZOO / "model_card.json", path.parent)
    os.chdir(fx); mk = fx / "PWNED"; (fx / "cfg").mkdir(); (fx / "plugins/bad_agents-0.0.dist-info").mkdir(parents=True)  # noqa: E702
    for v, (brk, _) in [("good", (lambda d: None, ())), *BREAKS.items()]:
        brk(write_synthetic_dataset(fx / "data", v, n_histories=2, steps=1000, group_size=250, env_id="Go2Walk-v0"))
    for v in ["good", *BREAKS, "missing_dir"]:
        (fx / "cfg" / f"{v}.yaml").write_text(f"{v}:\n  path: {v}\n  group: go2\n")
    res = CliRunner().invoke(main, train_args(fx, "good", "--max_steps", "12", "--epochs", "2", "--save_every", "1"))
    assert res.exit_code == 0, res.output
    shutil.copytree("runs/r", fx / "run")  # epoch_0001.pt (step 8), final.pt (step 12), latest.json, metrics.jsonl
    state = torch.load(ZOO / "policy.pt", weights_only=True); policy = torch_bytes(state); load_teacher("Go2Walk-v0")  # noqa: E702
    sb3_zip(fx / "payload" / "final.zip", policy, mk)                  # no card: only --trust-checkpoint may load it
    sb3_zip(fx / "payload_card" / "final.zip", policy, mk, card=True)  # a card: only tensors are read
    sb3_zip(fx / "pth_payload" / "final.zip", torch_bytes(Payload(mk)), card=True)
    sb3_zip(fx / "teach_run" / "checkpoints" / "ppo_64_steps.zip", policy, mk)
    for name, blob in {"pt_payload": torch_bytes(Payload(mk)), "text": b"hello\n", "truncated": policy[:1000], "bad_card": policy,
                       "random_weights": torch_bytes({k: torch.randn(3, 3) for k in state})}.items():
        (fx / name).mkdir(); (fx / name / "policy.pt").write_bytes(blob); shutil.copy(ZOO / "model_card.json", fx / name)  # noqa: E702
    for name, blob in {"vintix_payload.pt": torch_bytes({"format": "go2bench-vintix", "x": Payload(mk)}), "vintix_other.pt":
                       torch_bytes({"a": torch.zeros(2)}), "vintix_truncated.pt": (fx / "run/final.pt").read_bytes()[:5000],
                       "png.yaml": b"\x89PNG\r\n\x1a\n\x00\xff\xfe" * 10,
                       "teach_run/ppo_config.json": json.dumps({"env_id": "Go2Walk-v0", "ppo": dataclasses.asdict(PPOConfig()), "task": {}}),
                       "bad_card/model_card.json": "{oops", "afile": "a regular file\n", "bomb.yaml": bomb(),
                       "bomb_field.yaml": bomb() + "good: {path: good, group: go2, collect: *i}\n", "plugins/bad_agents.py": PLUGIN,
                       "tag.yaml": f"dt: !!python/object/apply:os.system ['touch {mk}']\n",
                       "plugins/bad_agents-0.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: bad-agents\nVersion: 0.0\n",
                       "plugins/bad_agents-0.0.dist-info/entry_points.txt": ENTRY_POINTS,
                       "result.json": (REPO / "tests/fixtures/results/random_Go2Walk-v0.json").read_text()}.items():
        (fx / name).write_bytes(blob if isinstance(blob, bytes) else blob.encode())
    return sorted(sys.modules)


# ------------------------------------------------------------------------------------------- cases
def train_args(fx: Path, cfg: str | None = "good", *extra) -> list:
    """A short valid `train` (with a dataset variant's config, a .yaml path, or None: no config) plus ``extra``."""
    data = [] if cfg is None else ["--dataset_config_paths", cfg if cfg.endswith(".yaml") else f"{fx}/cfg/{cfg}.yaml"]
    return ["train", *data, "--data_dir", f"{fx}/data", "--model", "tiny", "--context_len", "32", "--batch_size", "2",
            "--max_steps", "2", "--num_workers", "0", "--no_progress_bar", "--out_dir", "runs", "--name", "r", *extra]


BASES = {"EVAL": "eval --agent random --num-envs 1 --episodes 1 --max-episode-steps 5 --no-progress",
         "TEACH": "teach --num-envs 2 --total-steps 48 --eval-episodes 0 --quiet --no-progress-bar --out t",
         "COLLECT": "collect --env Go2Walk-v0 --num-histories 2 --steps-per-history 100 --no-progress-bar --out ds",
         "ROLLOUT": "rollout --env Go2Walk-v0 --agent random --num-envs 1 --steps 5", "LB": "leaderboard r.json --out lb",
         "PIPE": "pipeline --print-config --out p"}


def cmd(text: str, fx: Path) -> list[str]:  # BASES, TRAIN (TRAIN0: no dataset config), RESUME; FX, MK (the marker), BOMB
    bases = {**{k: v.split() for k, v in BASES.items()}, "TRAIN": train_args(fx), "TRAIN0": train_args(fx, None),
             "RESUME": train_args(fx, "good", "--max_steps", "12", "--epochs", "2", "--save_every", "1", "--resume")}
    text = text.replace("FX", str(fx)).replace("MK", str(fx / "PWNED")).replace("BOMB", shlex.quote(bomb(inline=True)))
    return [a for tok in shlex.split(text) for a in bases.get(tok, [tok])]


# class | command (see cmd) | names, one of which the error must contain | setup | flags.  <a;b;c> makes one case per
# item; {} in names is then the item's key (its last YAML key, or its first word / key=). Setup: PATH=TEXT writes a file
# (\n: newline), r.json+KEY: YAML the fixture result file with one field changed. Flags: run / teach / result (copy the
# fixture training run / teach run / result file first), safe (accepting is right), warn (exit 0 + a warning naming it), scene,
# md / metrics (then check the Markdown table / that metrics.jsonl repeats no step).
TABLE = """
checkpoint | EVAL --agent teacher:FX/<payload/final.zip;payload;pth_payload/final.zip;pt_payload;text;truncated;random_weights> | {}, policy.pt
checkpoint | EVAL --agent <teacher:FX/bad_card;FX/payload/final.zip;teacher:FX/nonexistent.zip;vintix:FX/vintix_payload.pt> | {}, model_card.json
checkpoint | EVAL --agent <vintix:FX/vintix_truncated.pt;vintix:FX/afile;vintix-nocontext:FX/vintix_other.pt> | {}
checkpoint | COLLECT --teacher FX/<payload/final.zip;text/policy.pt;truncated/policy.pt> | {}
checkpoint | EVAL --agent teacher:FX/payload_card/final.zip | | | safe
checkpoint | TEACH --resume --total-steps 64 | | | scene safe teach
range | TRAIN --<grad_clip -1;grad_clip nan;min_lr_ratio -50;min_lr_ratio 2;lr nan;lr -1;lr inf;beta1 1;beta2 nan;weight_decay -1> | {}
range | TRAIN --<max_minutes nan;context_len 1;batch_size 0;seed 4294967296;model_override n_layers=0;model_override dropout=.nan> | {}
range | EVAL --<episodes -1;num-envs 0;max-episode-steps 0;random-score nan;expert-score inf;seeds -1> | {}
range | EVAL --<init-joint-noise -1;init-joint-noise nan;init-joint-noise inf> | init-joint-noise, init_joint_noise
range | TRAIN --<compile maybe;target nope> | compile, target
range | EVAL --config w.yaml | {} | w.yaml=<dt: 0;dt: .nan;substeps: 0;episode_length_s: .inf;tracking_sigma: -1>
range | EVAL --config w.yaml | {} | w.yaml=<commands: {lin_vel_x: [1.0, 0.0]};commands: {lin_vel_x: [.nan, .nan]};rewards: {tracking_lin_vel: .nan}>
range | EVAL --config w.yaml | {} | w.yaml=<randomization: {friction_range: [-1, 1]};randomization: {push_interval_s: -1}>
range | TEACH --<total-steps 0;checkpoint-every 0;target-kl -1;target-kl nan;max-minutes nan;log-every inf;seed -1> | {}
range | COLLECT --<num-histories 0;steps-per-history 0;max-perf 2;seed -1> | {}
range | COLLECT --<p 0;p nan;f 1> | noise-power, noise-floor, schedule.p, schedule.f
range | COLLECT --<segments 0;segments 3;segments 2> | segments
range | <EVAL --random-score 5 --expert-score 5;ROLLOUT --seed -1> | score, seed
yaml | <EVAL --config;TRAIN0 --dataset_config_paths;TRAIN --model;data check --config;collect --config> FX/bomb.yaml | bomb.yaml
yaml | <TRAIN --model_override n_layers=BOMB;PIPE --set eval.agents=BOMB;PIPE --set "train.lr=!!python/object/apply:os.system ['touch MK']"> | n_layers, eval.agents, train.lr
yaml | <EVAL --config;data check --config;TRAIN --model> FX/tag.yaml | tag.yaml
yaml | <data check --config FX/bomb_field.yaml;EVAL --config FX/png.yaml> | bomb_field.yaml, png.yaml
resume | RESUME --<context_len 48;batch_size 4;lr 0.001;seed 3;trajectory_sparsity 64;model seed;model_override n_layers=3> | {} | | run
resume | RESUME | final.pt, max_steps, --resume | | run safe
resume | RESUME --max_steps 16 | latest.json | runs/r/latest.json=<{garbage;{"file": "nope.pt"};{"file": "../../afile"}> | run warn metrics
resume | RESUME --max_steps 16 | final.pt | runs/r/final.pt=not a checkpoint | run warn metrics
resume | <TRAIN --device cuda;TRAIN --device cuda:3;EVAL --agent teacher --device cuda;EVAL --device tpu> | device
resume | <EVAL --backend gpu;COLLECT --backend gpu> | backend
resume | <TEACH --device cuda;TEACH --resume --total-steps 64 --target-kl 0.05> | device, target_kl | | scene teach
num_envs | <EVAL --num-envs 1000000;ROLLOUT --num-envs 10000000;TEACH --num-envs 10000000> | num_envs, num-envs
num_envs | <COLLECT --num-histories 10000000;PIPE --set eval.num_envs=1000000> | num_histories, num-histories, num_envs
num_envs | COLLECT --steps-per-history 10000000 --max-episode-steps 10 --segments 1000000 | num_envs
results | LB | r.json | r.json+<agent: 5;seeds: '0,1';mean_return: '0.9';normalized_score: .nan;per_seed: [];returns: [1.0];config.episodes: 0;format: ~>
results | LB | r.json | r.json=<[1, 2];agent: x;>
results | LB | r.json | r.json+<agent: 'a|b';agent: "a\\nb";env: Go2|Walk> | safe md
results | LB r.json | r.json | | result
results | LB --pool <v=r.json;v;v=r.json,nope.json;v=r.json,r.json> | pool | | result
results | EVAL --agent <'';nosuch;random:ckpt.pt;raises-agent;notcallable-agent;none-agent;noact-agent;importfail-agent> | {}, agent
results | EVAL --agent random --agent <random;teacher --out r.json;teacher --video v.mp4> | agent, out, video
results | eval --agent random --family velocity --robots-split robots-v0 --held-out <a1 --num-envs 3;a1 --env Go2Walk-v0;spot> | num-envs, --env, spot
results | eval --family faults --agent teacher-privileged | faults
results | EVAL --agent nan-agent | nan-agent | | scene
collect | COLLECT --<out FX/afile/ds;env-ids 5-2;env-ids 0-99;teacher FX/cfg> | {}, afile, cfg
collect | COLLECT --resume | {} | ds/H0= && ds/ds.json={"collection": {"num_histories": 2, <"steps_per_history": 50;"steps_per_history": 100, "seed": 5>}}
collect | COLLECT --resume | {}, ds.json, teacher | ds/H0= && ds/<ds.json={oops;ds.json={"collection": {"num_histories": 2, "steps_per_history": 100}}>
collect | COLLECT --resume --p 0.3 | old.json | ds/H0= && ds/old.json={"collection": {"num_histories": 2, "steps_per_history": 100}}
collect | <COLLECT --resume;COLLECT> | ds.json, resume | ds/H0=
collect | collect --config go2_dataset_config --out x | out
collect | collect --config c.yaml | {} | c.yaml=<g: {path: g, group: g, collect: {p: .nan}};g: {path: g, group: g, collect: {nois: 1}}>
pipeline | PIPE --set <train.lr=-1;train.grad_clip=-1;train.min_lr_ratio=-50;collect.p=.nan;collect.seed=-1;eval.episodes=0;eval.seeds=[]> | {}
pipeline | PIPE --set <eval.seeds=[-1];gpus=0;reward_scale=-1;reward_scale=.inf;train_gpus=2;train.bogus=1;bogus.x=1;train.data_dir=x> | {}
pipeline | PIPE --set <train=1;noequals;train.lr=abc;eval.agents=[random,teacher,nosuch];envs=[Nope-v0]> | {}, nosuch, Nope-v0
pipeline | PIPE --stages bogus | stages
files | data check <nope;FX/afile;--config FX/cfg/missing_dir.yaml> | {}, missing_dir
files | TRAIN0 --dataset_config_paths c.yaml | {}, c.yaml | c.yaml=<good: {path: good, grup: go2};good: {path: /etc, group: g};- good>
files | TRAIN --<model missing.yaml;dataset_config_paths nope.yaml> | missing.yaml, nope.yaml
files | TRAIN --<model_override n_layer=2;out_dir FX/afile/runs> | n_layer, afile
files | TRAIN --model m.yaml | n_layer | m.yaml=n_layer: 2
files | EVAL --config w.yaml | {}, w.yaml | w.yaml=<dtt: 0.02;commands: {lin_vel: [0, 1]};dt: fast;dt: 0.02\\ndt: 0.05;dt: [0.01, 0.02>
files | <EVAL --out FX/afile/r.json;ROLLOUT --out FX/afile/r.json;TEACH --out FX/afile/t> | afile
files | LB <--out FX/afile/lb;--datasets FX/cfg> | afile, cfg | | result
files | export <nope;FX/afile;FX/cfg> --out e.pt | {}, afile, cfg
"""


def cases(fx: Path) -> list[Case]:
    """The TABLE's cases, then those that need Python (broken datasets and checkpoints, envs)."""
    C: list[Case] = []

    def key(item: str) -> list[str]:  # what names an item of a <...> list (see TABLE), and a dotted key's last part
        k = re.findall(r'(\w+)"?: [^{]', item)[-1:] or [Path(re.split(r"[ =]", item.strip("'").removeprefix("model_override "))[0]).name]
        return k + k[0].split(".")[-1:] if "." in k[0] and not k[0].endswith((".zip", ".pt", ".yaml", ".json")) else k

    def prepare(d: Path, spec: str, flags: list, extra: Callable | None) -> None:  # the TABLE's setup and flags, in folder d
        [shutil.copytree(fx / src, d / dst) for f, src, dst in (("run", "run", "runs/r"), ("teach", "teach_run", "t")) if f in flags]
        if "result" in flags or spec.startswith("r.json+"):
            res = json.loads((fx / "result.json").read_text())
            if spec.startswith("r.json+"):
                k, v = spec[7:].split(": ", 1); *parents, last = k.split(".")  # noqa: E702
                functools.reduce(dict.__getitem__, parents, res)[last] = yaml.safe_load(v)
            (d / "r.json").write_text(json.dumps(res))
        for path, text in [part.split("=", 1) for part in spec.replace("H0", H0).split(" && ") if part and not spec.startswith("r.json+")]:
            (d / path).parent.mkdir(parents=True, exist_ok=True); (d / path).write_text(text.replace("\\n", "\n"))  # noqa: E702
        extra and extra(d)

    def md_table_ok(out: str, d: Path) -> str | None:  # leaderboard.md: a header, a rule, a row, as many unescaped pipes each
        p = d / "lb/leaderboard.md"
        table = [ln for ln in p.read_text().split("\n")[2:] if ln and not ln.startswith("Normalised")] if p.exists() else ["|"] * 3
        ok = len(table) == 3 and all(ln.startswith("|") for ln in table) and len({len(re.findall(r"(?<!\\)\|", ln)) for ln in table}) == 1
        return None if ok else f"the Markdown table is broken: {table!r}"[:300]

    def metrics_unique(out: str, d: Path) -> str | None:
        steps = [json.loads(ln).get("step") for ln in (d / "runs/r/metrics.jsonl").read_text().splitlines() if '"loss"' in ln]
        return None if len(steps) == len(set(steps)) else f"metrics.jsonl repeats steps after the resume: {steps}"

    def add(cls, desc, args=None, names=(), spec="", flags="", extra=None, check=None, fn=None):
        flags, checks = flags.split(), {"md": md_table_ok, "metrics": metrics_unique}
        C.append(Case(cls, desc, args and cmd(args, fx), fn, tuple(names), ([f for f in flags if f in ("safe", "warn")] or ["error"])[0],
                      lambda d: prepare(d, spec, flags, extra), check or next((checks[f] for f in flags if f in checks), None), "scene" in flags))
    for line in filter(None, TABLE.splitlines()):
        cls, args, names, setup, flags = ([x.strip() for x in re.split(r"(?<=\s)\|(?=\s)", line)] + ["", ""])[:5]
        m = re.search(r"<([^>]*)>", args + setup)
        for item in m.group(1).split(";") if m else [""]:
            a, s = (x.replace(m.group(0), item) if m else x for x in (args, setup))
            add(cls, a + (f"  (with {s})" if s else "") + (f"  [{flags}]" if flags else ""), a, spec=s, flags=flags,
                names=[n for part in names.split(", ") for n in (key(item) if part == "{}" else [part]) if n])
    for v, (_, names) in BREAKS.items():  # 2: `data check` and `train` on each broken copy
        add("data", f"data check {v}", f"data check FX/data/{v}", names)
        add("data", f"TRAIN on {v}", f"TRAIN0 --dataset_config_paths FX/cfg/{v}.yaml", names)
    for desc, blob in [("a pickle payload", Payload(fx / "PWNED")), ("not a go2bench checkpoint", {"a": 1})]:
        add("resume", f"RESUME --max_steps 16 (final.pt holds {desc})", "RESUME --max_steps 16", ["final.pt"], flags="run warn metrics",
            extra=lambda d, blob=blob: (d / "runs/r/final.pt").write_bytes(torch_bytes(blob)))
    add("resume", "RESUME --context_len 48 --lr 0.001 (both named)", "RESUME --context_len 48 --lr 0.001", ["context_len"], flags="run",
        check=lambda o, d: None if "lr =" in o else "the lr conflict is not named")
    add("resume", "RESUME (every checkpoint corrupt)", "RESUME --max_steps 16", ["final.pt", "epoch_0001.pt"], flags="run",
        extra=lambda d: [os.truncate(d / "runs/r" / n, 100) for n in ("final.pt", "epoch_0001.pt")])
    for n in (10**6, 2**40, 0, -3, 2.5, "4", True):  # 6
        add("num_envs", f"gymnasium.make_vec('Go2Walk-v0', num_envs={n!r})", names=["num_envs"],
            fn=lambda n=n: importlib.import_module("gymnasium").make_vec("Go2Walk-v0", num_envs=n))
    add("results", "LB (r.json is JSON nested 10**5 deep)", "LB", ["r.json"], extra=lambda d: (d / "r.json").write_text("[" * 10**5))
    for flag in ("yes", "2"):  # an environment variable the Genesis start-up reads
        add("range", f"GO2BENCH_DETERMINISTIC={flag} (Genesis start-up options)", names=["GO2BENCH_DETERMINISTIC"],
            fn=lambda flag=flag: (os.environ.update(GO2BENCH_DETERMINISTIC=flag),
                                  importlib.import_module("go2bench.envs.genesis_runtime").init_options("gpu")))

    def env(S: dict, vec: bool = False):  # 9: the scene batch's shared env: a WalkEnv, or a vector env of 2
        gym = importlib.import_module("gymnasium")
        return S[vec] if vec in S else S.setdefault(vec, gym.make_vec("Go2Walk-v0", num_envs=2) if vec else gym.make("Go2Walk-v0"))
    for desc, fn in [("WalkEnv.step with NaN actions", lambda S: (env(S).reset(seed=0), env(S).step(np.full(12, np.nan, np.float32)))),
                     ("WalkEnv.step after close()", lambda S: (env(S).close(), env(S).step(np.zeros(12, np.float32)))),
                     ("WalkEnv.reset after close()", lambda S: env(S).reset(seed=0)),
                     ("vector env step after close()", lambda S: (env(S, True).reset(seed=0), env(S, True).close(),
                                                                    env(S, True).step(np.zeros((2, 12), np.float32)))),
                     ("vector env reset after close()", lambda S: env(S, True).reset(seed=0))]:
        add("env_close", desc, names=["close", "nan"], flags="scene", fn=fn)
    return C


# ------------------------------------------------------------------------------------------- running
def _vm(pid: str = "self") -> dict:
    return {ln.split(":")[0]: int(ln.split()[1]) for ln in open(f"/proc/{pid}/status") if ln.startswith("Vm")}


def run_one(case: Case, folder: Path, fx: Path, state: dict) -> dict:
    """Run one case in this process (a child): the raw facts that :func:`classify` judges."""
    folder.mkdir(parents=True, exist_ok=True); os.chdir(folder); case.setup(folder)  # noqa: E702
    vm0, rss0, r = _vm(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, {"exit": None, "output": "", "tail": "", "exc": None}
    try:
        if case.args is not None:
            res = CliRunner().invoke(importlib.import_module("go2bench.cli").main, case.args, catch_exceptions=True)
            tail = [ln for ln in (res.stderr if res.stderr.strip() else res.stdout).splitlines() if ln.strip()]  # the last line seen
            r.update(exit=res.exit_code, output=res.output, tail=(tail or [""])[-1].strip())
            if res.exception is not None and not isinstance(res.exception, SystemExit):
                r["exc"] = (traceback.format_exception_only(res.exception)[0].splitlines()[0] + "\n"  # its first line, then the traceback
                            + "".join(traceback.format_exception(*res.exc_info))[-3000:])
        else:
            r.update(exit=0, output=f"returned {type(case.fn(state) if case.scene else case.fn()).__name__}")
    except ReachedScene:
        r["exit"] = "scene"
    except Exception as e:  # noqa: BLE001 - an API case raising is the expected outcome, unless it is a crash
        r.update(exit=1, output=f"Error: {type(e).__name__}: {' '.join(str(e).split())}")
        r.update(tail=r["output"], exc=None if isinstance(e, (ValueError, RuntimeError, OSError, MemoryError))
                 else r["output"][7:] + "\n" + traceback.format_exc()[-3000:])
    r["rss_growth_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    r["at_limit"] = (_vm()["VmPeak"] - max(vm0["VmPeak"], vm0["VmSize"])) / 2**20 > LIMIT_GB - 0.5
    r["payload_ran"] = (fx / "PWNED").exists() and not (fx / "PWNED").unlink()
    if case.check and r["exit"] != "scene" and r["exc"] is None:
        with contextlib.suppress(Exception):  # a check that fails itself leaves "check failed"
            r["check"] = "check failed"; r["check"] = case.check(r["output"], folder)  # noqa: E702
    return r


def fork(fn: Callable[[], Any], timeout: float, log: Path, limit: bool = True) -> tuple[Any, str]:
    """``fn()`` in a forked child (stdout/stderr to ``log``, Genesis guarded): (its JSON-able result or None, why not)."""
    rd, wr = os.pipe(); sys.stdout.flush(); sys.stderr.flush(); rss = _vm()["VmRSS"]; pid = os.fork()  # noqa: E702
    if pid == 0:
        os.close(rd); fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC); os.dup2(fd, 1); os.dup2(fd, 2)  # noqa: E702
        try:
            limit and resource.setrlimit(resource.RLIMIT_AS, (_vm()["VmSize"] * 1024 + LIMIT_GB * 2**30, resource.RLIM_INFINITY))
            gr = importlib.import_module("go2bench.envs.genesis_runtime")  # the guard: GPU checks run, a CPU scene build stops
            orig, gr.init = gr.init, lambda backend="cpu": orig(backend) if backend != "cpu" else (_ for _ in ()).throw(ReachedScene())
            out = json.dumps(fn()).encode()
        except BaseException as e:  # noqa: BLE001
            out = json.dumps({"internal": f"{type(e).__name__}: {e}"}).encode()
        with os.fdopen(wr, "wb") as f:
            f.write(out)
        os._exit(0)
    os.close(wr); chunks, deadline, why = [b"x"], time.time() + timeout, ""  # noqa: E702
    while chunks[-1] and not why:
        if time.time() >= deadline:
            why = f"timeout after {timeout:.0f} s, memory +{(_vm(str(pid)).get('VmHWM', 0) - rss) / 1024:.0f} MB"
            os.kill(pid, signal.SIGKILL)
        elif select.select([rd], [], [], max(0.0, deadline - time.time()))[0]:
            chunks.append(os.read(rd, 1 << 16))
    os.close(rd); status = os.waitpid(pid, 0)[1]  # noqa: E702
    why = why or (f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else "")
    with contextlib.suppress(ValueError):
        return json.loads(b"".join(chunks[1:])), why
    return None, why or "no result"


def classify(case: Case, r: dict | None, why: str) -> tuple[str, str]:
    """(outcome, detail) of a case's raw facts."""
    norm, has = (lambda s: s.lower().replace("-", "_")), (lambda lines: any(norm(n) in norm(" ".join(lines)) for n in case.names))
    if r is None or "internal" in r:
        if "signal 9" in why or float((re.findall(r"memory \+(\d+)", why) or [0])[0]) > BLOWUP_GB * 1024:
            return "blow-up", why
        return ("silent", f"no error within the time limit ({why})") if "timeout" in why else ("traceback", why or r["internal"])
    if r["payload_ran"] or r.get("check"):
        return "silent", r.get("check") or "the pickle payload RAN (code execution)"
    if r["rss_growth_mb"] > BLOWUP_GB * 1024 or (r["at_limit"] and "MemoryError" in (r["exc"] or r["output"])):
        return "blow-up", f"memory grew {r['rss_growth_mb']:.0f} MB (limit: +{LIMIT_GB} GB of address space)"
    lines = [ln.strip() for ln in r["output"].splitlines() if ln.strip()]
    warns, errs = [ln for ln in lines if ln.lower().startswith("warning")], [ln for ln in lines if ln.lower().startswith("error:")]
    if r["exc"] or "Traceback" in r["output"]:
        return "traceback", (r["exc"] or r["output"][r["output"].index("Traceback"):]).strip().splitlines()[0 if r["exc"] else -1][:300]
    if r["exit"] in ("scene", 0):
        if case.expect == "safe" or (case.expect == "warn" and r["exit"] == 0 and has(warns)):
            return "clear", (warns or ["accepted (right for this input)"])[0][:300]
        return "silent", "accepted: reached the Genesis scene build" if r["exit"] == "scene" else "exit 0: " + (lines or [""])[-1][:250]
    if not errs or not r["tail"].lower().startswith(("error:", "warning:")):
        return "cryptic", f"exit {r['exit']} without a one-line Error: message: {r['tail'][:250]}"
    return ("clear", errs[-1][:300]) if not case.names or has(errs) else ("cryptic", f"names none of {list(case.names)}: {errs[-1][:250]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=list(CLASSES), help="run one class")
    [ap.add_argument(f"--{n}", action="store_true", help=h) for n, h in [("list", "list the cases"), ("keep", "keep the temp folder")]]
    a, root, t0 = ap.parse_args(), Path(tempfile.mkdtemp(prefix="bad_inputs_")), time.time()
    todo = [(i, c) for i, c in enumerate(cases(root / "fx")) if a.only in (None, c.cls)]
    if a.list:
        return print("\n".join(f"{i:3d} {c.cls:10s} {c.desc}" for i, c in todo)) or shutil.rmtree(root)
    os.environ.pop("GO2BENCH_TRACEBACK", None); fx = root / "fx"; fx.mkdir(); (root / "cases").mkdir()  # noqa: E702
    modules, why = fork(lambda: build_fixtures(fx), 600, root / "fixtures.log", limit=False)
    if not isinstance(modules, list):
        sys.exit(f"fixtures failed ({why}): {modules}; see {root / 'fixtures.log'}")
    for m in (m for m in modules if m.split(".")[0] in ("torch", "sympy", "stable_baselines3", "gymnasium", "go2bench", "h5py")):
        with contextlib.suppress(Exception):  # import what the commands import, once: each forked case starts fast
            importlib.import_module(m)
    print(f"fixtures in {root} ({time.time() - t0:.0f} s)", flush=True)
    sys.path.insert(0, str(fx / "plugins"))  # the plug-in agents' entry points
    scene, records, batch = [(i, c) for i, c in todo if c.scene], [], 0
    if scene and (batch := os.fork()) == 0:  # the cases needing a real scene: one process (Genesis once), in the background
        fd = os.open(root / "scene.log", os.O_WRONLY | os.O_CREAT); os.dup2(fd, 1); os.dup2(fd, 2); state = {}  # noqa: E702
        for i, c in scene:
            try:
                r = run_one(c, root / "cases" / f"{i:03d}", fx, state)
            except Exception as e:  # noqa: BLE001
                r = {"internal": repr(e)}
            with open(root / "scene.jsonl", "a") as f:
                f.write(json.dumps({"i": i, "r": r}) + "\n")
        os._exit(0)
    for i, c in (x for x in todo if not x[1].scene):
        t = time.time()
        r, why = fork(lambda: run_one(c, root / "cases" / f"{i:03d}", fx, {}), TIMEOUT_S, root / "cases" / f"{i:03d}.log")
        records.append((i, c, r, why, time.time() - t))
        print(f"{i:3d} {c.cls:10s} {classify(c, r, why)[0]:9s} {time.time() - t:5.1f} s  {c.desc[:90]}", flush=True)
    while batch and time.time() < t0 + SCENE_TIMEOUT_S and os.waitpid(batch, os.WNOHANG) == (0, 0):
        time.sleep(2)
    with contextlib.suppress(OSError):  # still running after its time: stop it
        batch and (os.kill(batch, signal.SIGKILL), os.waitpid(batch, 0))
    log, jl, per, out, total = root / "scene.log", root / "scene.jsonl", {}, [], dict.fromkeys(KINDS, 0)
    done = {rec["i"]: rec["r"] for rec in map(json.loads, jl.read_text().splitlines())} if jl.exists() else {}
    records += [(i, c, done.get(i), "" if i in done else "timeout: the scene batch ran out of time", 0.0) for i, c in scene]
    noise = {s: log.read_text(errors="replace").count(s) for s in ("does not have effect", "exceeds joint limits")} if log.exists() else None
    for i, c, r, why, dt in sorted(records, key=lambda x: x[0]):
        kind, detail = classify(c, r, why)
        per.setdefault(c.cls, dict.fromkeys(KINDS, 0))[kind] += 1; total[kind] += 1; r = r or {}  # noqa: E702
        out.append({"id": i, "class": c.cls, "description": c.desc, "expect": c.expect, "outcome": kind, "detail": detail,
                    "command": ["go2bench", *c.args] if c.args else "Python API: see cases() in benchmarks/bad_inputs.py",
                    "exit_code": r.get("exit"), "output": (r.get("output") or "")[:300], "traceback": (r.get("exc") or "")[-1500:] or None,
                    "rss_growth_mb": round(r.get("rss_growth_mb", 0.0), 1), "wall_s": round(dt, 2)})
    head = f"{'class':48s} {'tried':>5s} " + " ".join(f"{k:>9s}" for k in KINDS)
    rows = [f"{CLASSES[c]:48s} {sum(per[c].values()):5d} " + " ".join(f"{per[c][k]:9d}" for k in KINDS) for c in CLASSES if c in per]
    print("\n".join(["", head, "-" * len(head), *rows, "-" * len(head), f"{'total':48s} {sum(total.values()):5d} "
                     + " ".join(f"{total[k]:9d}" for k in KINDS)] + [f"log noise in the scene batch (issue item 11): {noise}"] * bool(noise)))
    for o in out:
        o["outcome"] == "clear" or print(f"\n[{o['outcome']}] #{o['id']} {o['class']}: {o['description']}\n  -> {o['detail']}")
    path = RESULTS.with_name(f"bad_inputs_{a.only}.json") if a.only else RESULTS  # --only never overwrites the full run's file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"versions": importlib.import_module("go2bench.core.provenance").versions(), "config": {
        "only": a.only, "timeout_s": TIMEOUT_S, "scene_timeout_s": SCENE_TIMEOUT_S, "address_space_limit_gb": LIMIT_GB,
        "blowup_gb": BLOWUP_GB, "wall_s": round(time.time() - t0, 1), "load_avg": os.getloadavg(), "cpus": os.cpu_count(),
        "log_noise": noise}, "totals": {"tried": sum(total.values()), **total}, "per_class": per, "cases": out}, indent=1))
    print(f"\nwrote {path} ({time.time() - t0:.0f} s)")
    a.keep or shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
