#!/usr/bin/env bash
# Default-task PPO teachers of the robots that have none yet (issue 15), side by side in ONE device call,
# spread over the GPUs; each is evaluated for its model card and exported weights-only:
#   robot_teachers_zoo.tar.xz (zoo/<EnvId>/{policy.pt,model_card.json}), robot_teachers_logs.tar.xz
#   (teach_<EnvId>.log, summary.md), plus the kernel caches (ship, setup.sh). Run from the repo root on the device:
#   run(carry=[".devpack/p1", ".gl", ".whl", ".devpack/cache"], timeout_s=600,
#       command="bash benchmarks/device/robot_teachers.sh 6 560")
#   bash benchmarks/device/robot_teachers.sh [MINUTES=6] [BUDGET_S=560] [ENVS="A1Walk-v0 Go1Walk-v0 AnymalCWalk-v0"]
# Learning stops at the latest RESERVE_S (default 90) seconds before the end of BUDGET_S, leaving time
# for the model-card evaluation and the export.
set -u
T0=$(date +%s)
. benchmarks/device/setup.sh > /dev/null || exit 1
MIN=${1:-${TEACH_MIN:-6}}
BUDGET=${2:-${BUDGET_S:-560}}
ENVS=${3:-A1Walk-v0 Go1Walk-v0 AnymalCWalk-v0}
RESERVE=${RESERVE_S:-90}
LOGS=$RUNS/robot_teachers_out
STOP_AT=$((T0 + BUDGET - RESERVE))
HARD_END=$((T0 + BUDGET - 30))
NGPU=$(gpu_count)
mkdir -p "$LOGS/zoo" "$RUNS"
i=0
for env in $ENVS; do
  gpu=$((i % NGPU)); i=$((i + 1))
  launch_default_teacher "$env" "$gpu" "${NUM_ENVS:-4096}" "$LOGS"
done
wait
python3 - "$LOGS" <<'PY' | tee "$LOGS/summary.md"
import json, sys
from pathlib import Path
print("| env | steps | learn s | expert (mean return) | random | falls | tracking error |")
print("|---|---:|---:|---:|---:|---:|---:|")
for card_path in sorted(Path(sys.argv[1], "zoo").glob("*/model_card.json")):
    c = json.loads(card_path.read_text())
    print(f"| {c['env_id']} | {c['training_steps']:,} | {c['wall_time_s']:.0f} | {c.get('expert_score', float('nan')):.2f} | "
          f"{c.get('random_score', float('nan')):.2f} | {c.get('fall_rate', float('nan')):.0%} | "
          f"{c.get('mean_tracking_error', float('nan')):.3f} |")
PY
for f in "$LOGS"/teach_*.log; do echo "== $f"; tail -n 3 "$f"; done
ship robot_teachers_zoo -C "$LOGS" zoo
ship robot_teachers_logs -C "$LOGS" $(cd "$LOGS" && ls teach_*.log) summary.md
save_caches
echo "call took $(( $(date +%s) - T0 )) s"
