"""Vintix training: a tiny model learns a linear policy; checkpoint -> VintixPolicy; resume; DDP (gloo)."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import yaml
from click.testing import CliRunner

from go2bench.vintix.config import TrainConfig
from go2bench.testing import write_synthetic_dataset
from go2bench.vintix.inference import VintixPolicy, load_checkpoint
from go2bench.vintix.train import train


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("vintix_data")
    write_synthetic_dataset(root, "go2", n_histories=2, steps=1200, obs_dim=45, act_dim=12, episode_len=[150, 250],
                            env_id="Go2Walk-v0", group_size=500)
    write_synthetic_dataset(root, "mc", n_histories=2, steps=1200, obs_dim=33, act_dim=12, episode_len=200,
                            env_id="MiniCheetahWalk-v0", group_size=500)
    cfg = root / "multitask.yaml"
    cfg.write_text(yaml.safe_dump({
        "go2": {"type": "default", "path": "go2", "group": "go2_walking", "reward_scale": 50.0, "episode_sparsity": 1},
        "mc": {"type": "default", "path": "mc", "group": "mc_walking", "reward_scale": 10.0, "episode_sparsity": 2},
    }))
    return root, cfg


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cfg(data, out, **kw):
    root, cfg = data
    base = dict(data_dir=str(root), dataset_config_paths=[str(cfg)], out_dir=str(out), name="run", model="tiny",
                context_len=32, batch_size=8, trajectory_sparsity=16, epochs=2, save_every=1, lr=3e-3,
                num_workers=0, log_every=1, progress_bar=False, device="cpu", warmup_steps=5)
    base.update(kw)
    return TrainConfig(**base)


def test_learns_and_policy_reproduces_predictions(data, tmp_path):
    s = train(_cfg(data, tmp_path, max_steps=80, epochs=4))
    losses = [l for _, l in s["loss_history"]]
    assert s["step"] == 80
    assert np.mean(losses[-5:]) < 0.25 * np.mean(losses[:3]), losses[:3] + losses[-5:]
    run = tmp_path / "run"
    assert (run / "final.pt").exists() and (run / "config.json").exists()
    info = json.loads((run / "config.json").read_text())  # compile "auto" on the CPU: recorded as off
    assert info["train_config"]["compile"] == "auto" and info["compile"] is False
    assert json.loads((run / "latest.json").read_text())["file"] == "final.pt"
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 80 and lines[-1]["tokens_per_s"] > 0
    ckpt = load_checkpoint(run / "final.pt")
    assert ckpt["groups"]["go2_walking"]["obs_dim"] == 45 and ckpt["versions"]["go2bench"]

    # the loaded policy streams exactly what the trained weights compute on a full window
    pol = VintixPolicy.load(run / "final.pt")
    assert pol.group_for_env("MiniCheetahWalk-v0") == "mc_walking"
    from go2bench.histories.reader import read_history

    root, _ = data
    h = read_history(root / "go2" / "trajectories_env_0000.h5")
    T = 32
    pol.reset(2, "go2_walking")
    obs = torch.from_numpy(h["proprio_observation"][:T])
    rew = torch.from_numpy(h["reward"][:T])
    start = torch.from_numpy(h["step_num"][:T] == 0)
    outs = []
    for t in range(T):
        prev_r = rew[t - 1] if t > 0 else torch.tensor(0.0)
        outs.append(pol.act(obs[t][None].repeat(2, 1), prev_r.repeat(2), start[t].repeat(2)))
    outs = torch.stack(outs)[:, 0]
    m = pol.model
    pa = torch.zeros(T, 12)
    pa[1:] = pol.normalize_action(outs[:-1])
    pr = torch.zeros(T)
    pr[1:] = rew[:-1] * 50.0
    pa[start], pr[start] = 0, 0
    ref = m(pol.normalize_obs(obs)[None], pa[None], pr[None], torch.tensor([0]))[0] * pol._act_std + pol._act_mean
    torch.testing.assert_close(outs, ref, atol=1e-4, rtol=1e-4)
    # and it has learned the task: actions close to the dataset's (a linear function of obs)
    err = ((outs - torch.from_numpy(h["action"][:T])) ** 2).mean() / torch.from_numpy(h["action"]).var()
    assert err < 0.3


def test_resume_continues_at_the_right_step(data, tmp_path):
    full = train(_cfg(data, tmp_path / "a", max_steps=7))
    # the same run, stopped after 3 steps (mid-epoch) and resumed through CLI spellings with dashes and underscores
    train(_cfg(data, tmp_path / "b", max_steps=3))
    root, cfg = data
    from go2bench.cli.train import train_command

    r = CliRunner().invoke(train_command, [
        "--data-dir", str(root), "--dataset_config_paths", str(cfg), "--out_dir", str(tmp_path / "b"), "--name", "run",
        "--model", "tiny", "--context-len", "32", "--batch_size", "8", "--trajectory_sparsity", "16", "--epochs", "2",
        "--save_every", "1", "--lr", "3e-3", "--num-workers", "0", "--log_every", "1", "--no-progress-bar",
        "--device", "cpu", "--warmup_steps", "5", "--max_steps", "7", "--resume"])
    assert r.exit_code == 0, r.output
    assert "resuming" in r.output and "step 7" in r.output
    resumed = load_checkpoint(tmp_path / "b" / "run" / "final.pt")
    assert resumed["step"] == 7
    ref = dict(map(tuple, full["loss_history"]))
    got = dict(map(tuple, resumed["loss_history"]))
    assert sorted(got) == list(range(1, 8))
    for step in range(1, 8):
        assert got[step] == pytest.approx(ref[step], rel=1e-5, abs=1e-7), (step, got, ref)
    assert _metric_steps(tmp_path / "b" / "run") == list(range(1, 8))  # each step logged once


def test_cli_errors(data, tmp_path):
    from go2bench.cli.train import train_command

    root, cfg = data
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"go2": {"path": "go2", "group": "g", "reward_scal": 1.0}}))
    r = CliRunner().invoke(train_command, ["--data_dir", str(root), "--dataset_config_paths", str(bad)])
    assert r.exit_code != 0 and "reward_scal" in r.output and "bad.yaml" in r.output
    r = CliRunner().invoke(train_command, ["--data_dir", str(root), "--dataset_config_paths", str(cfg),
                                           "--model-override", "n_heads=5", "--model", "tiny"])
    assert r.exit_code != 0 and "n_heads" in r.output


def _ddp_worker(rank, world, port, cfg_dict, q):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    s = train(TrainConfig(**cfg_dict))
    q.put((rank, s["step"], s["final_loss"]))


@pytest.mark.slow  # two processes
def test_ddp_two_processes_gloo(data, tmp_path):
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    cfg = _cfg(data, tmp_path, max_steps=3, batch_size=4).__dict__
    ctx = mp.get_context("spawn")
    q = ctx.SimpleQueue()
    mp.start_processes(_ddp_worker, args=(2, port, cfg, q), nprocs=2, start_method="spawn", join=True)
    res = sorted(q.get() for _ in range(2))
    assert [r[1] for r in res] == [3, 3]
    assert res[0][2] == pytest.approx(res[1][2])  # the logged loss is all-reduced
    info = json.loads((tmp_path / "run" / "config.json").read_text())
    assert info["world_size"] == 2 and info["global_batch"] == 8
    assert load_checkpoint(tmp_path / "run" / "final.pt")["step"] == 3


# ------------------------------------------------------------------------------------ resume and settings


def _metric_steps(run_dir):
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [x["step"] for x in lines if "loss" in x]


def test_resume_refuses_changed_settings_naming_each(data, tmp_path):
    from go2bench.cli.train import train_command

    train(_cfg(data, tmp_path, max_steps=2))
    run = tmp_path / "run"
    before = (run / "final.pt").read_bytes(), (run / "latest.json").read_text()
    with pytest.raises(ValueError) as e:
        train(_cfg(data, tmp_path, max_steps=4, resume=True, context_len=64, lr=1e-3, model="seed"))
    msg = str(e.value)
    assert "context_len = 64 (checkpoint: 32)" in msg and "lr = 0.001 (checkpoint: 0.003)" in msg
    assert "model n_layers = 3 (checkpoint: 2" in msg and "max_steps" in msg.split("may change only")[1]
    # a changed dataset entry is a changed setting too
    root, cfg = data
    entries = yaml.safe_load(cfg.read_text())
    entries["go2"]["reward_scale"] = 5.0
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(entries))
    with pytest.raises(ValueError, match=r"group go2_walking reward_scale = 5.0 \(checkpoint: 50.0\)"):
        train(_cfg(data, tmp_path, max_steps=4, resume=True, dataset_config_paths=[str(other)]))
    # the CLI says it on one line, and nothing was written
    r = CliRunner().invoke(train_command, [
        "--data_dir", str(root), "--dataset_config_paths", str(cfg), "--out_dir", str(tmp_path), "--name", "run",
        "--model", "tiny", "--context_len", "32", "--batch_size", "16", "--device", "cpu", "--resume"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    errors = [x for x in r.output.splitlines() if x.strip()]
    assert len(errors) == 1 and "batch_size = 16 (checkpoint: 8)" in errors[0], r.output
    assert ((run / "final.pt").read_bytes(), (run / "latest.json").read_text()) == before
    # what may change (length of the run, logging, workers, device) does not stop a resume
    s = train(_cfg(data, tmp_path, max_steps=4, resume=True, log_every=2, save_every=3, num_workers=0))
    assert s["step"] == 4


def test_damaged_checkpoints_fall_back_and_metrics_stay_unique(data, tmp_path, capsys):
    kw = dict(trajectory_sparsity=64, epochs=2, save_every=1)
    full = train(_cfg(data, tmp_path, **kw))
    run = tmp_path / "run"
    per_epoch = load_checkpoint(run / "epoch_0001.pt")["step"]
    assert full["step"] == 2 * per_epoch and _metric_steps(run) == list(range(1, full["step"] + 1))

    # latest.json names final.pt, which is truncated: resume from epoch_0001.pt and redo epoch 1
    data_pt = (run / "final.pt").read_bytes()
    (run / "final.pt").write_bytes(data_pt[: len(data_pt) // 2])
    capsys.readouterr()
    s = train(_cfg(data, tmp_path, resume=True, **kw))
    out = capsys.readouterr().out
    assert "final.pt, which cannot be used" in out and f"epoch_0001.pt (step {per_epoch})" in out
    assert s["step"] == full["step"]
    assert _metric_steps(run) == list(range(1, full["step"] + 1))  # the lines after step per_epoch were redone
    got, ref = dict(map(tuple, s["loss_history"])), dict(map(tuple, full["loss_history"]))
    assert sorted(got) == sorted(ref) and all(got[k] == pytest.approx(ref[k], rel=1e-5) for k in ref)

    # an unreadable latest.json: the newest readable checkpoint (the new final.pt) is used
    (run / "latest.json").write_text("{not json")
    s = train(_cfg(data, tmp_path, resume=True, **kw))
    assert "latest.json is unreadable" in capsys.readouterr().out and s["step"] == full["step"]

    # nothing readable: one error naming every file
    for p in run.glob("*.pt"):
        p.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="no other checkpoint is readable") as e:
        train(_cfg(data, tmp_path, resume=True, **kw))
    assert "epoch_0001.pt" in str(e.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda_is_one_line(data, tmp_path):
    from go2bench.cli.train import train_command

    root, cfg = data
    r = CliRunner().invoke(train_command, ["--data_dir", str(root), "--dataset_config_paths", str(cfg),
                                           "--out_dir", str(tmp_path), "--model", "tiny", "--device", "cuda"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.output.strip().count("\n") == 0 and "CUDA is not available" in r.output, r.output


@pytest.mark.parametrize("field,value", [
    ("grad_clip", -1.0), ("grad_clip", 0.0), ("min_lr_ratio", -50.0), ("min_lr_ratio", 1.5), ("lr", 0.0),
    ("lr", float("nan")), ("lr", float("inf")), ("warmup_steps", -1), ("batch_size", 0), ("context_len", 1),
    ("weight_decay", -0.1), ("beta1", 1.0), ("beta2", -0.5), ("max_minutes", 0.0), ("max_steps", 0),
    ("log_every", 0), ("seed", -1), ("device", "gpu"),
])
def test_train_config_ranges_name_the_field(field, value):
    with pytest.raises(ValueError, match=rf"^{field} must"):
        TrainConfig(**{field: value})


@pytest.mark.parametrize("field,value", [("dropout", 1.0), ("dropout", -0.1), ("n_heads", 0), ("rope_base", 0.0),
                                         ("norm_eps", float("nan"))])
def test_model_config_ranges_name_the_field(field, value):
    from go2bench.vintix.config import ModelConfig

    with pytest.raises(ValueError, match=rf"^{field} must"):
        ModelConfig(**{field: value})


@pytest.mark.parametrize("flag,value", [("--grad_clip", "-1"), ("--min_lr_ratio", "-50"), ("--lr", "nan")])
def test_cli_refuses_out_of_range_options(data, tmp_path, flag, value):
    from go2bench.cli.train import train_command

    root, cfg = data
    r = CliRunner().invoke(train_command, ["--data_dir", str(root), "--dataset_config_paths", str(cfg),
                                           "--out_dir", str(tmp_path), "--model", "tiny", flag, value])
    assert r.exit_code != 0 and flag.lstrip("-") in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "run").exists()


def test_compile_auto_resolves_per_device(monkeypatch):
    import importlib.util

    from go2bench.vintix.config import effective_compile

    has_triton = importlib.util.find_spec("triton") is not None
    assert TrainConfig().compile == "auto"
    assert effective_compile("auto", torch.device("cpu")) is False
    assert effective_compile("auto", "cuda:1") is has_triton and effective_compile("auto", torch.device("cuda")) is has_triton
    assert effective_compile(True, "cpu") is True and effective_compile(False, "cuda") is False
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)  # CUDA without Triton: eager
    assert effective_compile("auto", "cuda") is False


def test_compile_in_yaml_and_on_the_command_line():
    from go2bench.cli.train import train_command, train_config
    from go2bench.core.config import ConfigError, from_dict

    for value in (True, False, "auto"):
        assert from_dict(TrainConfig, {"compile": value}, "t.yaml").compile == value
    for bad in ("yes", 1, None):
        with pytest.raises(ConfigError, match=r"^t\.yaml.*compile") as e:
            from_dict(TrainConfig, {"compile": bad}, "t.yaml")
        assert "\n" not in str(e.value)
    base = ["--dataset_config_paths", "c.yaml"]
    for args, want in (([], "auto"), (["--compile"], True), (["--compile", "false"], False),
                       (["--compile", "auto"], "auto"), (["--compile", "true", "--lr", "0.1"], True)):
        ctx = train_command.make_context("train", base + args)
        assert train_config(**ctx.params).compile == want, args
    r = CliRunner().invoke(train_command, base + ["--compile", "maybe"])
    assert r.exit_code == 2 and "'maybe' is not one of 'auto', 'true', 'false'" in r.output
