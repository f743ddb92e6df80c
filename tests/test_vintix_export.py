"""`go2bench export`: a training run's checkpoint without its resume-only state acts exactly like it, is smaller,
and bad input is refused in one line with nothing written."""

from __future__ import annotations

import hashlib
import json
import pickle

import pytest
import torch
import yaml
from click.testing import CliRunner

from go2bench.cli import main
from go2bench.testing import write_synthetic_dataset
from go2bench.vintix.config import TrainConfig
from go2bench.vintix.inference import VintixPolicy, load_checkpoint
from go2bench.vintix.train import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    write_synthetic_dataset(root, "go2", n_histories=2, steps=400, obs_dim=33, act_dim=12, episode_len=100,
                            env_id="Go2Walk-v0", group_size=200)
    (root / "cfg.yaml").write_text(yaml.safe_dump({"go2": {"type": "default", "path": "go2", "group": "go2_walking",
                                                           "reward_scale": 50.0, "episode_sparsity": 1}}))
    train(TrainConfig(data_dir=str(root), dataset_config_paths=[str(root / "cfg.yaml")], out_dir=str(root),
                      name="run", model="tiny", context_len=32, batch_size=4, trajectory_sparsity=16, epochs=1,
                      max_steps=6, lr=3e-3, num_workers=0, log_every=1, progress_bar=False, device="cpu"))
    return root / "run"


def _actions(path, steps=12, n=3):
    torch.manual_seed(0)
    pol = VintixPolicy.load(path, device="cpu")
    pol.reset(n, "go2_walking")
    out, rew, start = [], torch.zeros(n), torch.ones(n, dtype=torch.bool)
    for t in range(steps):
        out.append(pol.act(torch.randn(n, 33), rew, start))
        rew, start = torch.randn(n), torch.tensor([t == 6] * n)
    return torch.stack(out)


def _export(*args):
    return CliRunner().invoke(main, ["export", *map(str, args)])


def test_export_acts_identically_is_smaller_and_has_no_resume_state(run_dir, tmp_path):
    out, card = tmp_path / "w" / "vintix.pt", tmp_path / "card.json"
    r = _export(run_dir, "--out", out, "--card", card)
    assert r.exit_code == 0, r.output
    src = torch.load(run_dir / "final.pt", weights_only=True)
    ckpt = load_checkpoint(out)
    assert {"optimizer", "scheduler", "rng"} <= src.keys()
    assert not {"optimizer", "scheduler", "rng"} & ckpt.keys()
    # AdamW keeps two moments per weight: the export holds about a third of the bytes
    assert out.stat().st_size < 0.5 * (run_dir / "final.pt").stat().st_size
    assert torch.equal(_actions(run_dir / "final.pt"), _actions(out))  # bit-identical, not merely close
    for k, v in src["model_state"].items():
        assert torch.equal(ckpt["model_state"][k], v)
    assert ckpt["step"] == src["step"] == 6 and ckpt["exported_from"]["file"] == "final.pt"
    c = json.loads(card.read_text())
    assert c["groups"] == {"go2_walking": "Go2Walk-v0"} and c["training"]["steps"] == 6
    assert c["training"]["planned_steps"] == 6 and c["training"]["context_len"] == 32
    assert c["dataset"]["groups"]["go2_walking"]["num_histories"] == 2
    assert c["results"] == "TO FILL" and "'tiny'" in c["model"]
    assert c["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()


def test_export_follows_latest_json_when_there_is_no_final(run_dir, tmp_path):
    run = tmp_path / "cut"
    run.mkdir()
    (run / "epoch_0001.pt").write_bytes((run_dir / "final.pt").read_bytes())
    (run / "latest.json").write_text(json.dumps({"file": "epoch_0001.pt"}))
    r = _export(run, "--out", tmp_path / "e.pt")
    assert r.exit_code == 0, r.output
    assert "epoch_0001.pt" in r.output and "dropped optimizer, scheduler, rng" in r.output


@pytest.mark.parametrize("case", ["missing", "truncated", "pickle", "not_vintix", "empty_run"])
def test_export_refuses_bad_input_in_one_line_writing_nothing(run_dir, tmp_path, case):
    src = tmp_path / "src.pt"
    if case == "truncated":
        src.write_bytes((run_dir / "final.pt").read_bytes()[:5000])
    elif case == "pickle":  # an arbitrary object: the weights-only loader must refuse to build it
        src.write_bytes(pickle.dumps({"format": "go2bench-vintix", "x": _Evil()}, protocol=2))
    elif case == "not_vintix":
        torch.save({"format": "something-else", "w": torch.zeros(2)}, src)
    elif case == "empty_run":
        src = tmp_path / "run"
        src.mkdir()
    out = tmp_path / "out.pt"
    r = _export(src, "--out", out)
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and str(src) in lines[0], r.output
    assert not out.exists() and not list(tmp_path.glob(".out.pt*"))


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))
