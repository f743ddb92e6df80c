#!/usr/bin/env bash
# 1 GPU vs 2 GPUs (torchrun, DDP) with the same global batch (8 x 2048 tokens) on the same synthetic
# multitask dataset: tokens/s (scaling efficiency) and the two loss curves. Run from the repo root on
# a 2-GPU machine:  bash benchmarks/device/ddp_scaling.sh [STEPS]   carry: [".devpack/p1", ".whl"]
set -u
STEPS=${1:-400}
python3 .devpack/p1/unpack.py > /tmp/unpack.log 2>&1 || { cat /tmp/unpack.log; exit 1; }
. /tmp/genesis-env.sh
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/extra .whl/*.whl || exit 1
export PYTHONPATH="$PWD:/tmp/extra:$PYTHONPATH" PYTHONUNBUFFERED=1
SYN=${SYN:-/tmp/syn}; RUNS=${RUNS:-/tmp/ddp_runs}; DEV=${DEV:-cuda}; MODEL=${MODEL:-seed}; CTX=${CTX:-2048}
python3 - "$SYN" <<'PY'
import sys
from go2bench.vintix.data import write_synthetic_dataset
root = sys.argv[1]
for i, name in enumerate(("go2", "mc")):
    write_synthetic_dataset(root, name, n_histories=16, steps=100_000, obs_dim=33, act_dim=12, episode_len=1000, seed=i)
open(f"{root}/cfg.yaml", "w").write("go2:\n  path: go2\n  group: go2\nmc:\n  path: mc\n  group: mc\n")
PY
common="--data_dir $SYN --dataset_config_paths $SYN/cfg.yaml --context_len $CTX --trajectory_sparsity 128 --epochs 1
  --model $MODEL --num_workers 6 --device $DEV --seed 0 --max_steps $STEPS --log_every 10 --no_progress_bar --out_dir $RUNS"
python3 -m go2bench.cli.train_main $common --batch_size 8 --name one_gpu > "$OUT/one_gpu.log" 2>&1
NPROC=${NPROC:-2}
python3 -m torch.distributed.run --standalone --nproc_per_node=$NPROC -m go2bench.cli.train_main $common --batch_size $((8 / NPROC)) \
  --name two_gpu > "$OUT/two_gpu.log" 2>&1
cp $RUNS/one_gpu/metrics.jsonl "$OUT/one_gpu_metrics.jsonl"; cp $RUNS/two_gpu/metrics.jsonl "$OUT/two_gpu_metrics.jsonl"
tail -n 3 "$OUT/one_gpu.log" "$OUT/two_gpu.log"
