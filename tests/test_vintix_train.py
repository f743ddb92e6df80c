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


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


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
