#!/usr/bin/env bash
# Trains the two PPO teachers side by side on one GPU, each for MINUTES of wall time, evaluates
# them (model cards), and copies checkpoints, cards and logs to $OUT. Run from the repo root:
#   bash benchmarks/device/teachers.sh [MINUTES] [RESUME_DIR]
# Brings back (ship, setup.sh) teachers.tar.xz (final.zip checkpoints and model cards), teachers_logs.tar.xz, caches.
set -u
. benchmarks/device/setup.sh || exit 1
LOGS=$RUNS/teachers_out; mkdir -p "$LOGS"
MIN=${1:-6}
RESUME=${2:-}
for env in Go2Walk-v0 MiniCheetahWalk-v0; do
  out=$RUNS/teach_$env
  extra=""
  if [ -n "$RESUME" ] && [ -f "$RESUME/${env}_final.zip" ]; then
    mkdir -p $out/checkpoints && cp "$RESUME/${env}_final.zip" $out/checkpoints/ppo_1_steps.zip && extra="--resume"
  fi
  python3 -m go2bench.cli teach --env $env --num-envs "${NUM_ENVS:-4096}" --total-steps 500000000 --device "$DEVICE" \
    --backend "$BACKEND" --out $out --max-minutes "$MIN" --no-progress-bar $extra > "$LOGS/teach_$env.log" 2>&1 &
done
wait
for env in Go2Walk-v0 MiniCheetahWalk-v0; do
  mkdir -p "$LOGS/teachers"
  cp "$RUNS/teach_$env/final.zip" "$LOGS/teachers/${env}_final.zip"
  cp "$RUNS/teach_$env/model_card.json" "$LOGS/teachers/${env}_model_card.json"
  head -c 3000 "$LOGS/teachers/${env}_model_card.json"; echo
done
ship teachers -C "$LOGS" teachers
ship teachers_logs -C "$LOGS" $(cd "$LOGS" && ls teach_*.log)
save_caches
