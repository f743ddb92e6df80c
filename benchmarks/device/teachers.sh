#!/usr/bin/env bash
# Trains the two PPO teachers side by side on one GPU, each for MINUTES of wall time, evaluates
# them (model cards), and copies checkpoints, cards and logs to $OUT. Run from the repo root:
#   bash benchmarks/device/teachers.sh [MINUTES] [RESUME_DIR]
set -u
. benchmarks/device/setup.sh || exit 1
MIN=${1:-6}
RESUME=${2:-}
for env in Go2Walk-v0 MiniCheetahWalk-v0; do
  out=runs/teach_$env
  extra=""
  if [ -n "$RESUME" ] && [ -f "$RESUME/${env}_final.zip" ]; then
    mkdir -p $out/checkpoints && cp "$RESUME/${env}_final.zip" $out/checkpoints/ppo_1_steps.zip && extra="--resume"
  fi
  python3 -m go2bench.cli teach --env $env --num-envs 4096 --total-steps 500000000 --device cuda --backend gpu \
    --out $out --max-minutes "$MIN" --no-progress-bar $extra > "$OUT/teach_$env.log" 2>&1 &
done
wait
for env in Go2Walk-v0 MiniCheetahWalk-v0; do
  cp runs/teach_$env/final.zip "$OUT/${env}_final.zip"
  cp runs/teach_$env/model_card.json "$OUT/${env}_model_card.json"
  cat "$OUT/${env}_model_card.json" | head -c 3000
done
save_caches
