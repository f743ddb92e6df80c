#!/usr/bin/env bash
# The 8 task-family PPO teachers (issue 14) in ONE device call on one H200: {Go2Walk-v0, MiniCheetahWalk-v0}
# x {velocity, dynamics} x {privileged, blind}, trained side by side (one process each, NUM_ENVS envs, Genesis
# GPU backend, policy on cuda) over the suite's train thetas (a new theta at every episode start), then each
# evaluated on every test theta and 128 train thetas (teacher and random, >= 8 full episodes per theta each,
# cached per theta in its model card) and exported weights-only in the zoo layout:
#   zoo/<EnvId>/<family>/{privileged,blind}/{policy.pt,model_card.json}
# plus teach_<env>_<family>_<kind>.log, summary.md (the table printed at the end) and the kernel
# caches ($OUT/qcache.tar.xz, $OUT/gcache.tar.xz: copy them to .devpack/cache/ for the next fresh machine).
#
# Run from the repo root on the device (see ../shared/device/README.md and benchmarks/device/setup.sh):
#   run(carry=[".devpack/p1", ".gl", ".whl", ".devpack/cache"], timeout_s=600,
#       command="bash benchmarks/device/family_teachers.sh 6")
#   bash benchmarks/device/family_teachers.sh [MINUTES=6] [BUDGET_S=560] [NUM_ENVS=4096]
# With several GPUs the processes are spread over them (CUDA_VISIBLE_DEVICES), e.g. 4 per GPU on 2 H200s.
# Brings back (ship, setup.sh): family_teachers_zoo.tar.xz (zoo/), family_teachers_logs.tar.xz (the logs and
# summary.md; summary.md is also printed) and the two kernel caches.
# CPU dry run (docs/device.md): DEVICE_DRY=1 bash benchmarks/device/family_teachers.sh  (there: one env, one
# family, both kinds, 2 envs each, TEACH_MIN minutes of learning, 50-step episodes, a small per-theta evaluation).
# MINUTES caps each teacher's learning; whatever the scene builds took (75-150 s per new scene on a fresh
# machine, ~35-40 s with carried caches; the 8 processes build in parallel), learning stops at the latest
# RESERVE_S (default 170) seconds before the end of BUDGET_S, counted from the start of this script, which
# leaves time for the per-theta evaluation (one 1000-step pass of all NUM_ENVS envs), the export, the summary
# and the caches. A process still running 40 s before the end is killed (its card written before the
# evaluation is still exported). Afterwards, here: unpack family_teachers_zoo.tar.xz and copy zoo/* into go2bench/zoo/.
# Environment: RESERVE_S (see above), TEACH_ARGS (more `go2bench teach` options, e.g. "--task-eval-train 32"),
# ENVS, FAMILIES and KINDS (space-separated subsets, default all), or TEACHERS (env:family:kind items); DEFAULT_ENVS: env ids whose default-task
# teacher is trained in the same call, side by side (exported to zoo/<EnvId>/, 256 evaluation episodes).
set -u
T0=$(date +%s)
. benchmarks/device/setup.sh || exit 1
MIN=${1:-${TEACH_MIN:-6}}
BUDGET=${2:-${BUDGET_S:-560}}
NUM_ENVS=${3:-${NUM_ENVS:-4096}}
RESERVE=${RESERVE_S:-170}
if [ "${DEVICE_DRY:-0}" = 1 ]; then
  : "${ENVS:=Go2Walk-v0}" "${FAMILIES:=velocity}" "${TASK_EVAL_EPISODES:=1}" "${TEACH_EVAL_EPISODES:=2}"
  : "${TEACH_ARGS:=--max-episode-steps 50 --task-eval-train 2}"
fi
LOGS=$RUNS/family_teachers_out  # zoo/ and the logs, shipped at the end
STOP_AT=$((T0 + BUDGET - RESERVE))
HARD_END=$((T0 + BUDGET - 40))
mkdir -p "$LOGS/zoo" "$RUNS"
NGPU=$(gpu_count)
i=0
echo "setup took $(( $(date +%s) - T0 )) s; learning stops by $((STOP_AT - T0)) s, hard end at $((HARD_END - T0)) s"

# TEACHERS="env:family:kind ..." names the teachers one by one (e.g. blind ones for some robots and a privileged
# retrain for another in one call); otherwise every combination of ENVS x FAMILIES x KINDS
if [ -z "${TEACHERS:-}" ]; then
  for env in ${ENVS:-Go2Walk-v0 MiniCheetahWalk-v0}; do
    for fam in ${FAMILIES:-velocity dynamics}; do
      for kind in ${KINDS:-privileged blind}; do TEACHERS="${TEACHERS:-} $env:$fam:$kind"; done
    done
  done
fi
for teacher in $TEACHERS; do
  IFS=: read -r env fam kind <<< "$teacher"
  case "$kind" in privileged|blind) ;; *) echo "TEACHERS: '$teacher' is not env:family:privileged|blind"; exit 2;; esac
  name=${env}_${fam}_${kind}
  flag=""
  [ "$kind" = privileged ] && flag="--privileged"
  gpu=$((i % NGPU)); i=$((i + 1))
  (
    CUDA_VISIBLE_DEVICES=$gpu OMP_NUM_THREADS=2 timeout -k 5 $((HARD_END - $(date +%s))) python3 -m go2bench.cli teach \
      --env "$env" --family "$fam" $flag --tasks train --resample-tasks episode \
      --num-envs "$NUM_ENVS" --total-steps 2000000000 --device "$DEVICE" --backend "$BACKEND" --out "$RUNS/fam_$name" \
      --max-minutes "$MIN" --stop-at "$STOP_AT" --checkpoint-every 2000000000 \
      --task-eval-episodes "${TASK_EVAL_EPISODES:-8}" --log-every 30 --quiet --no-progress-bar ${TEACH_ARGS:-}
    echo "teach exit code $? at $(( $(date +%s) - T0 )) s"
    python3 -c "from go2bench.agents.teacher import export_teacher; print('exported', export_teacher('$RUNS/fam_$name', zoo_root='$LOGS/zoo'))"
  ) > "$LOGS/teach_$name.log" 2>&1 &
done
for env in ${DEFAULT_ENVS:-}; do
  gpu=$((i % NGPU)); i=$((i + 1))
  launch_default_teacher "$env" "$gpu" "$NUM_ENVS" "$LOGS"
done
wait
echo "all teachers done at $(( $(date +%s) - T0 )) s"

python3 - "$LOGS" <<'EOF' | tee "$LOGS/summary.md"
import json, sys
from pathlib import Path
from go2bench.teachers.task_eval import family_teachers_table

out = Path(sys.argv[1])
print(family_teachers_table(out / "zoo"))
print()
for card_path in sorted((out / "zoo").glob("*/*/*/model_card.json")):
    card = json.loads(card_path.read_text())
    ev = card.get("per_task_eval", {})
    bins = card.get("family_scores", {}).get("test", {}).get("by_bin", {})
    print(f"{card_path.parent.relative_to(out / 'zoo')}: {card.get('env_steps_per_s')} env-steps/s learning, "
          f"per-theta eval {ev.get('wall_s', 'not done')} s, {ev.get('episodes_per_task_min', 0)}+ episodes per theta; "
          + ", ".join(f"{b} {v['teacher_mean_return']:.2f}/{v['random_mean_return']:.2f}" for b, v in bins.items()))
EOF
for f in "$LOGS"/teach_*.log; do echo "== $f"; tail -n 4 "$f"; done
ship family_teachers_zoo -C "$LOGS" zoo
ship family_teachers_logs -C "$LOGS" $(cd "$LOGS" && ls teach_*.log) summary.md
save_caches
echo "call took $(( $(date +%s) - T0 )) s"
