#!/usr/bin/env bash
# 1 GPU vs 2 GPUs (torchrun, DDP) with the same global batch (8 x 2048 tokens) on the same synthetic
# multitask dataset: tokens/s (scaling efficiency) and the two loss curves. Run from the repo root on
# a 2-GPU machine:  bash benchmarks/device/ddp_scaling.sh [STEPS]   carry: [".devpack/p1", ".whl"]
# Brings back (ship, setup.sh) ddp_scaling.tar.xz: both logs and both metrics files.
set -u
STEPS=${1:-400}
. benchmarks/device/setup.sh > /dev/null || exit 1
LOGS=$RUNS/ddp_scaling_out; mkdir -p "$LOGS"
SYN=${SYN:-/tmp/syn}; DDP_RUNS=${DDP_RUNS:-/tmp/ddp_runs}; DEV=${DEV:-cuda}; MODEL=${MODEL:-seed}; CTX=${CTX:-2048}
python3 - "$SYN" <<'PY'
import sys
from go2bench.vintix.data import write_synthetic_dataset
root = sys.argv[1]
for i, name in enumerate(("go2", "mc")):
    write_synthetic_dataset(root, name, n_histories=16, steps=100_000, obs_dim=33, act_dim=12, episode_len=1000, seed=i)
open(f"{root}/cfg.yaml", "w").write("go2:\n  path: go2\n  group: go2\nmc:\n  path: mc\n  group: mc\n")
PY
common="--data_dir $SYN --dataset_config_paths $SYN/cfg.yaml --context_len $CTX --trajectory_sparsity 128 --epochs 1
  --model $MODEL --num_workers 6 --device $DEV --seed 0 --max_steps $STEPS --log_every 10 --no_progress_bar --out_dir $DDP_RUNS"
python3 -m go2bench.cli.train_main $common --batch_size 8 --name one_gpu > "$LOGS/one_gpu.log" 2>&1
NPROC=${NPROC:-2}
python3 -m torch.distributed.run --standalone --nproc_per_node=$NPROC -m go2bench.cli.train_main $common --batch_size $((8 / NPROC)) \
  --name two_gpu > "$LOGS/two_gpu.log" 2>&1
cp $DDP_RUNS/one_gpu/metrics.jsonl "$LOGS/one_gpu_metrics.jsonl"; cp $DDP_RUNS/two_gpu/metrics.jsonl "$LOGS/two_gpu_metrics.jsonl"
tail -n 3 "$LOGS/one_gpu.log" "$LOGS/two_gpu.log"
ship ddp_scaling "$LOGS"
