#!/usr/bin/env bash
# `go2bench pipeline --preset gpu` in one device call (resumable across calls). Run from the repo root:
#   bash benchmarks/device/pipeline_gpu.sh GPUS SECONDS [--set FIELD=VALUE ...]
# carry: [".devpack/p1", ".gl", ".whl", ".devpack/cache"] (+ "runs/pipeline_gpu" to resume a run).
# PRESET=seed runs another preset (its folder runs/pipeline_seed, its archives pipeline_seed_*), STAGES=collect,train
# a subset of the stages, SEGMENTS=S sets collect.segments (the seed's 1M-step histories as S segments each), e.g.
#   PRESET=seed SEGMENTS=100 STAGES=collect,train bash benchmarks/device/pipeline_gpu.sh 1 540 --set train.epochs=1 \
#     --set train.save_every=1 --set train.max_steps=8000
# Brings back (ship, setup.sh) pipeline_results.tar.xz (pipeline.json, results, leaderboard, dataset configs,
# training config/metrics/summary, dataset JSONs and plots), pipeline_logs.tar.xz, pipeline_model.tar.xz (the
# run's Vintix exported weights-only, with a model card skeleton), pipeline_family_models.tar.xz (the family
# stage's models, exported; the family results and leaderboard are in pipeline_results) and the kernel caches.
# SECONDS caps the pipeline only: the export and ship after it take up to a minute more (four family models
# compressed: about 45 s), so give the call's timeout_s at least SECONDS + 60 (a 555-s cap in a 600-s call lost its
# models in the seventh session).
# CPU dry run (docs/device.md): DEVICE_DRY=1 bash benchmarks/device/pipeline_gpu.sh 1 1200  (tiny sizes; the
# family stage is left out there: perf_and_family.sh's dry run covers it).
set -u
. benchmarks/device/setup.sh || exit 1
GPUS=${1:-1}; SECS=${2:-480}; shift 2 || true
PRESET=${PRESET:-gpu}; NAME=pipeline; [ "$PRESET" = gpu ] || NAME=pipeline_$PRESET
RUN=$RUNS/pipeline_$PRESET; LOGS=$RUNS/pipeline_${PRESET}_logs
mkdir -p "$LOGS"
nproc; free -g | head -2; python3 -c "import torch; print(torch.__version__, torch.cuda.device_count())"
SET=(--set "gpus=$GPUS" --set "backend=$BACKEND" --set "train.device=$DEVICE" --set "family_train.device=$DEVICE")
# the sizes a dry run makes tiny (unset on the device: the gpu preset's)
for kv in HISTORIES=collect.num_histories STEPS_PER_HISTORY=collect.steps_per_history EP_STEPS=collect.max_episode_steps \
          GROUP_SIZE=collect.group_size MODEL=train.model CONTEXT=train.context_len SPARSITY=train.trajectory_sparsity \
          WORKERS=train.num_workers TRAIN_STEPS=train.max_steps EPISODES=eval.episodes EVAL_ENVS=eval.num_envs \
          JOBS=eval.jobs SEGMENTS=collect.segments; do
  v=${kv%%=*}; [ -n "${!v:-}" ] && SET+=(--set "${kv#*=}=${!v}")
done
[ "${DEVICE_DRY:-0}" = 1 ] && SET+=(--set "family.families=[]")
timeout "$SECS" python3 -m go2bench.cli pipeline --preset "$PRESET" --out "$RUN" ${STAGES:+--stages "$STAGES"} \
  "${SET[@]}" "$@" > "$LOGS/pipeline.log" 2>&1
rc=$?
echo "pipeline exit $rc"
grep -a "pipeline \|steps/s\|wrote\|Error\|error" "$LOGS/pipeline.log" | tail -40
tail -c 3000 "$LOGS/pipeline.log"
mapfile -t res < <(cd "$RUN" && ls -d pipeline.json dataset_config*.yaml results leaderboard runs/vintix/config.json \
  runs/vintix/metrics.jsonl runs/vintix/latest.json runs/vintix/train_summary.json runs/vintix/done \
  data/*/*/*.json data/*/*/*.png family/results family/leaderboard family/references family/*.yaml family/*.log \
  family/track.json family/runs/*/*/config.json family/runs/*/*/train_summary.json family/runs/*/*/metrics.jsonl \
  family/data/*/*/*.json 2>/dev/null)
ship ${NAME}_results -C "$RUN" "${res[@]}"
mapfile -t runlogs < <(cd "$RUN" && ls *.log 2>/dev/null)
ship ${NAME}_logs "$LOGS" $(for f in "${runlogs[@]}"; do echo "$RUN/$f"; done)
if [ -f "$RUN/runs/vintix/final.pt" ]; then
  python3 -m go2bench.cli export "$RUN/runs/vintix" --out "$RUNS/${NAME}_model/vintix.pt" \
    --card "$RUNS/${NAME}_model/model_card.json" && ship ${NAME}_model -C "$RUNS" ${NAME}_model
fi
# the family stage's models, exported weights-only (4.4 MB each for the seed model), in one ship (split if big)
fam=()
for ckpt in "$RUN"/family/runs/*/*/final.pt; do
  [ -f "$ckpt" ] || continue
  d=$(dirname "$ckpt"); name="$(basename "$(dirname "$d")")_$(basename "$d")"
  python3 -m go2bench.cli export "$d" --out "$RUNS/pipeline_gpu_family_models/$name.pt" \
    --card "$RUNS/pipeline_gpu_family_models/${name}_card.json" && fam+=("$name")
done
[ ${#fam[@]} -gt 0 ] && ship pipeline_family_models -C "$RUNS" pipeline_gpu_family_models
ls -la "$OUT"
save_caches
exit $rc
