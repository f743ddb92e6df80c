"""The no-context baseline, Vintix trained with its context limited to the current episode
(``go2bench train --context episode``): its windows never cross an episode boundary, what it predicts
does not depend on earlier episodes, the mode travels in the checkpoint, and its agent forgets at
every episode start by itself."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from go2bench.agents.registry import make_agent
from go2bench.histories.dataset_config import load_dataset_configs
from go2bench.testing import write_synthetic_dataset
from go2bench.vintix.config import TrainConfig, make_model_config
from go2bench.vintix.data import MultiTaskWindows, episode_windows, load_or_compute_stats
from go2bench.vintix.inference import VintixPolicy, checkpoint_context, load_checkpoint
from go2bench.vintix.model import VintixModel
from go2bench.vintix.train import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LENS = [37, 90, 12, 150, 5]  # episode lengths, cycled: some shorter than the context, some longer
ENV = "Go2Walk-v0"


def _config(root, name="d", episode_sparsity=1):
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump({name: {"type": "default", "path": name, "group": "go2_walking",
                                           "reward_scale": 5.0, "episode_sparsity": episode_sparsity}}))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("episodic")
    write_synthetic_dataset(root, "d", n_histories=2, steps=700, obs_dim=6, act_dim=3, episode_len=LENS,
                            env_id=ENV, group_size=128)
    return root, _config(root)


def _windows(root, cfg, context, L=64, s=16, stats=None):
    return MultiTaskWindows(load_dataset_configs([cfg], root), L, s, stats=stats, context=context)


def test_episode_windows_by_hand():
    # episodes of 5, 7 and 4 steps
    starts, lens = episode_windows(np.array([0, 5, 12, 16]), 4, 2)
    assert starts.tolist() == [0, 5, 7, 12] and lens.tolist() == [4, 4, 4, 4]
    starts, lens = episode_windows(np.array([0, 5, 12, 16]), 6, 2)  # short episodes: one cut window each
    assert starts.tolist() == [0, 5, 12] and lens.tolist() == [5, 6, 4]
    assert episode_windows(np.array([0]), 6, 2)[0].tolist() == []


@pytest.mark.parametrize("episode_sparsity", [1, 2])
def test_windows_never_cross_an_episode_boundary(data, episode_sparsity):
    root, _ = data
    cfg = _config(root, "d", episode_sparsity)
    L, s = 64, 16
    ds = _windows(root, cfg, "episode", L, s)
    seen_starts = set()
    for i in range(len(ds)):
        raw = ds.raw_window(i)
        steps = raw["step_num"]
        n = int(ds.sample_len[i])
        assert len(steps) == n and 1 <= n <= L
        # one episode: step_num counts up by one, from 0 or from a multiple of the sparsity
        assert np.all(np.diff(steps) == 1), (i, steps)
        assert steps[0] % s == 0
        ep_len = LENS[0]  # the episode's length, found from the step numbers of its history
        h = ds.histories[int(ds.sample_history[i])]
        k = int(np.searchsorted(h.seg_stream_start, ds.sample_start[i], side="right")) - 1
        ep_len = int(h.seg_stream_start[k + 1] - h.seg_stream_start[k])
        assert steps[-1] < ep_len and (n == L or steps[-1] == ep_len - 1)  # cut only by the episode's end
        if steps[0] == 0:
            seen_starts.add((int(ds.sample_history[i]), k))
        sample = ds[i]
        assert sample["mask"].tolist() == [True] * n + [False] * (L - n)
        for key in ("obs", "prev_action", "target"):
            assert torch.all(sample[key][n:] == 0)
        if steps[0] == 0:  # an episode's first step sees no previous action or reward
            assert torch.all(sample["prev_action"][0] == 0) and sample["prev_reward"][0] == 0
    # every kept episode gets a window from its first step
    assert seen_starts == {(j, k) for j, h in enumerate(ds.histories) for k in range(len(h.seg_file_start))}
    # history mode on the same data: full windows, some of them across episode boundaries
    hist = _windows(root, cfg, "history", L, s)
    assert set(hist.sample_len.tolist()) == {L}
    assert any(np.any(np.diff(hist.raw_window(i)["step_num"]) != 1) for i in range(len(hist)))


def _change_earlier_episodes(src, dst, rows: int):
    """A copy of dataset ``src`` whose first ``rows`` steps of every history hold other data."""
    shutil.copytree(src, dst)
    rng = np.random.default_rng(7)
    for path in sorted(dst.glob("*.h5")):
        with h5py.File(path, "r+") as f:
            first = sorted(f.keys(), key=lambda g: int(g.split("-")[0]))[0]
            for key in ("proprio_observation", "action", "reward"):
                d = f[first][key]
                d[:rows] = rng.normal(size=d[:rows].shape) * 5


def test_prediction_at_an_episode_end_ignores_earlier_episodes(data, tmp_path):
    """The last step of a window of episode 2 (rows 127..138): the same output whatever episodes 0-1 held."""
    root, _ = data
    _change_earlier_episodes(root / "d", tmp_path / "d", rows=127)  # episodes 0 and 1: 37 + 90 steps
    stats = {"go2_walking": load_or_compute_stats(root / "d")[0]}  # one normalisation for both copies
    torch.manual_seed(0)
    model = VintixModel(make_model_config("tiny"), {"go2_walking": {"obs_dim": 6, "act_dim": 3}}).eval()

    def last_outputs(context, L):
        outs = []
        for folder in (root, tmp_path):
            ds = _windows(folder, _config(folder), context, L=L, s=1, stats=stats)
            i = next(i for i in range(len(ds)) if ds.sample_history[i] == 0 and ds.sample_start[i] + ds.sample_len[i]
                     == 139 and (context == "history" or ds.sample_start[i] == 127))
            b = {k: v[None] for k, v in ds[i].items()}
            with torch.no_grad():
                y = model(b["obs"], b["prev_action"], b["prev_reward"], b["group"])
            outs.append(y[0, int(ds.sample_len[i]) - 1])
        return outs

    a, b = last_outputs("episode", L=32)
    assert torch.equal(a, b)
    a, b = last_outputs("history", L=32)  # the same step with the whole history in context: it does change
    assert not torch.allclose(a, b, atol=1e-4)


def test_padding_carries_no_loss():
    torch.manual_seed(0)
    pred, target = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    model = VintixModel(make_model_config("tiny"), {"g": {"obs_dim": 4, "act_dim": 3}})
    group = torch.tensor([0, 0])
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    expected = torch.cat([((pred[0, :3] - target[0, :3]) ** 2).flatten(), ((pred[1] - target[1]) ** 2).flatten()])
    other = target.clone()
    other[0, 3:] = 100.0  # padded targets
    for t in (target, other):
        assert model.loss(pred, t, group, mask).item() == pytest.approx(expected.mean().item(), rel=1e-6)
    assert model.loss(pred, target, group).item() == pytest.approx(((pred - target) ** 2).mean().item(), rel=1e-6)


# ------------------------------------------------------------------------------------- checkpoint and agent
def _train(data, out, context, **kw):
    root, cfg = data
    base = dict(data_dir=str(root), dataset_config_paths=[str(cfg)], out_dir=str(out), name=context, model="tiny",
                context_len=32, context=context, batch_size=8, trajectory_sparsity=16, epochs=1, save_every=1,
                max_steps=3, num_workers=0, progress_bar=False, device="cpu")
    base.update(kw)
    return train(TrainConfig(**base))


@pytest.fixture(scope="module")
def checkpoints(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return {c: out / c / "final.pt" for c in ("history", "episode") if _train(data, out, c)}


def test_mode_round_trips_through_the_checkpoint_and_the_cli(data, checkpoints, tmp_path):
    for context, path in checkpoints.items():
        ckpt = load_checkpoint(path)
        assert ckpt["context"] == context and ckpt["train_config"]["context"] == context
        assert checkpoint_context(ckpt) == context and VintixPolicy.load(path).context == context
    old = load_checkpoint(checkpoints["history"])  # written before the field existed: whole histories
    del old["context"], old["train_config"]["context"]
    assert checkpoint_context(old) == "history"
    # the CLI spelling; a resumed run must keep the mode
    from go2bench.cli.train import train_command

    root, cfg = data
    args = ["--data-dir", str(root), "--dataset-config-paths", str(cfg), "--out-dir", str(tmp_path), "--name", "r",
            "--model", "tiny", "--context-len", "32", "--batch-size", "8", "--epochs", "1", "--max-steps", "2",
            "--num-workers", "0", "--no-progress-bar", "--device", "cpu"]
    r = CliRunner().invoke(train_command, [*args, "--context", "episode"])
    assert r.exit_code == 0, r.output
    assert "context: episode" in r.output and load_checkpoint(tmp_path / "r" / "final.pt")["context"] == "episode"
    r = CliRunner().invoke(train_command, [*args, "--context", "history", "--resume", "--max-steps", "3"])
    assert r.exit_code != 0 and "context = 'history' (checkpoint: 'episode')" in r.output
    r = CliRunner().invoke(train_command, [*args, "--context", "trial"])
    assert r.exit_code != 0 and "'trial' is not one of" in r.output


def _stream(agent, obs, rew, start):
    """Actions of ``agent`` over steps of (N, obs_dim) observations, rewards and episode-start flags."""
    out = []
    for t in range(obs.shape[0]):
        out.append(agent.act(obs[t], rew[t], start[t]))
    return torch.stack(out)


def test_episodic_agent_forgets_at_each_of_its_envs_episode_starts(checkpoints):
    torch.manual_seed(1)
    T, first = 12, 5  # env 0: an episode of 5 steps, then another; env 1: one episode of 12 steps
    obs, rew = torch.randn(T, 2, 6), torch.randn(T, 2)
    start = torch.zeros(T, 2, dtype=torch.bool)
    start[0] = True
    start[first, 0] = True
    agent = make_agent(f"vintix-episodic:{checkpoints['episode']}", ENV)
    assert agent.name == "vintix-episodic" and agent.context == "episode" and not agent.no_context
    agent.reset(2, ENV)
    both = _stream(agent, obs, rew, start)

    fresh = make_agent(f"vintix-episodic:{checkpoints['episode']}", ENV)
    fresh.reset(1, ENV)
    second = _stream(fresh, obs[first:, :1], rew[first:, :1], start[first:, :1])
    torch.testing.assert_close(both[first:, 0], second[:, 0], rtol=0, atol=1e-6)  # env 0: episode 2 from scratch
    fresh.reset(1, ENV)
    alone = _stream(fresh, obs[:, 1:], rew[:, 1:], start[:, 1:])
    torch.testing.assert_close(both[:, 1], alone[:, 0], rtol=0, atol=1e-6)  # env 1 kept its context throughout

    agent.policy.context = "history"  # the same weights, keeping the context: episode 2 then differs
    agent.reset(2, ENV)
    kept = _stream(agent, obs, rew, start)
    assert not torch.allclose(kept[first:, 0], second[:, 0], atol=1e-4)


def test_registry_names_each_checkpoint_kind(checkpoints):
    with pytest.raises(ValueError, match="trained with context 'episode'.*vintix-episodic:PATH"):
        make_agent(f"vintix:{checkpoints['episode']}", ENV)
    with pytest.raises(ValueError, match="trained with context 'episode'"):
        make_agent(f"vintix-nocontext:{checkpoints['episode']}", ENV)
    with pytest.raises(ValueError, match="trained with context 'history'.*--context episode"):
        make_agent(f"vintix-episodic:{checkpoints['history']}", ENV)
    with pytest.raises(ValueError, match="vintix-episodic:PATH"):
        make_agent("vintix-episodic", ENV)
    assert make_agent(f"vintix-nocontext:{checkpoints['history']}", ENV).name == "vintix-nocontext"
