#!/usr/bin/env bash
# One 2-GPU device call (issues 16 and 17), everything bounded from inside, ONE Genesis process per GPU at a time
# (processes sharing a GPU time-slice it: five 128-env collections on one H200 ran at 9-10k env-steps/s each):
#   GPU 0: issue 16's measurements, benchmarks/device/perf_track.sh with PERF_STEPS (default "collect env:16384");
#   GPU 1: the pipeline's family stage of FAMILY (velocity) on FAMILY_ENV (Go2Walk-v0) at GPU scale (histories on
#          the train thetas, Vintix and vintix-episodic, the family protocol on the test thetas, the leaderboard).
# Brings back (ship, setup.sh) paf_results.tar.xz (benchmark JSON, the family run's small files: results,
# leaderboard, configs, metrics), paf_logs.tar.xz (the logs), paf_models.tar.xz (the family run's Vintix
# checkpoints exported weights-only) and, with SAVE_CACHES=1, the caches: a big checkpoint cannot take the
# results with it.
#   run(kind="nvidia-h200-x2", carry=[".devpack/p1", ".whl", ".devpack/cache", ".gl"], timeout_s=600,
#       command="for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig; FAMILY_ENV=MiniCheetahWalk-v0 bash benchmarks/device/perf_and_family.sh")
# CPU dry run (docs/device.md): DEVICE_DRY=1 bash benchmarks/device/perf_and_family.sh  (the perf track's CUDA-only
# steps are skipped; its default there is PERF_STEPS="env:2").
set -u
T0=$(date +%s)
. benchmarks/device/setup.sh > /dev/null || exit 1
BUDGET=${BUDGET_S:-570}
LOGS=$RUNS/paf_logs
mkdir -p "$LOGS" "$RESULTS"
touch "$LOGS/.call_start"
left() { echo $((T0 + BUDGET - $(date +%s))); }
[ "${DEVICE_DRY:-0}" = 1 ] && : "${PERF_STEPS:=env:2}" "${ENV_ARGS:=--steps 50 --reps 1 --warmup 5}"
export ENV_ARGS=${ENV_ARGS:-}

( export T0 BUDGET; PERF_GPU=0 PERF_LOGS="$LOGS/perf" PERF_STEPS=${PERF_STEPS:-"collect env:16384"} bash benchmarks/device/perf_track.sh
) > "$LOGS/gpu0.log" 2>&1 &

FAM=(--set "family.families=[${FAMILY:-velocity}]" --set "family.envs=[${FAMILY_ENV:-Go2Walk-v0}]"
     --set 'family.agents=[random, teacher-blind, teacher-privileged, vintix, vintix-episodic]'
     --set "family.trials=${TRIALS:-null}" --set "family.seeds=[${SEEDS:-0, 1}]"
     --set "family_collect.max_episode_steps=${EP_STEPS:-500}" --set "family_train.max_steps=${TRAIN_STEPS:-3000}"
     --set "backend=$BACKEND" --set "family_train.device=$DEVICE")
# the sizes a dry run makes tiny (unset on the device: the gpu preset's)
for kv in HISTORIES=family_collect.num_histories STEPS_PER_HISTORY=family_collect.steps_per_history \
          GROUP_SIZE=family_collect.group_size EPISODES=family.episodes MODEL=family_train.model \
          CONTEXT=family_train.context_len SPARSITY=family_train.trajectory_sparsity WORKERS=family_train.num_workers \
          WARMUP=family.warmup_steps; do
  v=${kv%%=*}; [ -n "${!v:-}" ] && FAM+=(--set "${kv#*=}=${!v}")
done
[ "${DEVICE_DRY:-0}" = 1 ] && FAM+=(--set family.reference_episodes=1)
(
  export CUDA_VISIBLE_DEVICES=1
  timeout -k 5 $(( $(left) - 30 )) python3 -m go2bench.cli pipeline --preset gpu --stages family --out "$RUNS/fam_gpu" \
    --set gpus=1 --set eval.jobs=1 "${FAM[@]}" ${FAMILY_SET:-}
  echo "family pipeline exit $? at $(( $(date +%s) - T0 )) s"
) > "$LOGS/family_gpu.log" 2>&1 &
wait
echo "all done at $(( $(date +%s) - T0 )) s"
tail -n 25 "$LOGS/gpu0.log"; tail -n 40 "$LOGS/family_gpu.log"
# results: new benchmark JSON and the family run's small files (no datasets, no checkpoints)
mapfile -t bench < <(find "$RESULTS" -type f -newer "$LOGS/.call_start")
mapfile -t fam < <(find "$RUNS/fam_gpu" -path '*/data' -prune -o -type f \( -name '*.json' -o -name '*.md' \
  -o -name '*.csv' -o -name '*.png' -o -name '*.yaml' -o -name '*.jsonl' \) -size -4M -print 2>/dev/null)
ship paf_results "${bench[@]}" "${fam[@]}"
mapfile -t famlogs < <(find "$RUNS/fam_gpu" -path '*/data' -prune -o -type f -name '*.log' -size -4M -print 2>/dev/null)
ship paf_logs "$LOGS" "${famlogs[@]}"
mkdir -p "$RUNS/paf_models"
for ck in $(find "$RUNS/fam_gpu" -name final.pt 2>/dev/null); do
  d=$(dirname "$ck"); name=$(echo "${d#"$RUNS"/fam_gpu/}" | tr / _)
  python3 -m go2bench.cli export "$d" --out "$RUNS/paf_models/$name.pt" --card "$RUNS/paf_models/${name}_card.json"
done
[ -n "$(ls "$RUNS/paf_models")" ] && ship paf_models "$RUNS/paf_models"
[ "${SAVE_CACHES:-0}" = 1 ] && save_caches
echo "call took $(( $(date +%s) - T0 )) s"
