#!/usr/bin/env bash
# Issue 17's study in one device call (<= 560 s, collection included): collects one robot x family dataset
# on the train thetas as the pipeline's family stage does (its dataset config, `go2bench collect`; the 10k-step
# parallel layout: 512 histories x 10k steps of 500-step episodes by default), optionally more datasets with
# other collection settings, collected at the same time as the main one (ALT_SETS: "LABEL:SET SET;LABEL:SET",
# e.g. "p0.3:family_collect.p=0.3;h40k:family_collect.steps_per_history=40000 family_collect.num_histories=128"
# for another noise schedule and longer histories; each is the baseline trained on it, a row "baseline@LABEL"),
# then benchmarks/family_study.py: every variant trained JOBS at a time per GPU and evaluated with the blind
# teacher as a reference row. The table goes to results/${STUDY_OUT:-family_study}/<robot>_<family>/ (another
# STUDY_OUT keeps an earlier study's table of the same robot and family). TRAIN_SEEDS=0,1,2 trains every variant
# once per seed and writes the pooled multi-seed table (one training per variant cannot rank variants 0.2-0.3 apart).
# Long histories fit one call as segments (collect.segments, docs/data.md): e.g. ALT_SETS="h160k:family_collect.
# num_histories=32 family_collect.steps_per_history=160000 family_collect.segments=32" (32 thetas, each history
# stepped as 32 segments of 5,000 steps at once); a dataset collected elsewhere: ALT_DATASET=LABEL=FOLDER.
#   run(kind="nvidia-h200", carry=[".devpack/p1", ".gl", ".whl", ".devpack/cache"], timeout_s=600,
#       command="ENV_ID=Go2Walk-v0 FAMILY=velocity bash benchmarks/device/family_study.sh")
# Brings back study.tar.xz (the table, results JSON, train summaries and configs), study_logs.tar.xz (the logs)
# and the kernel caches. Over two calls on one warm machine: TRAIN_ONLY=1 in the first (collect, then train until
# the budget; cut trainings keep their checkpoints), then the same command without it (the collection is found
# complete without a scene build, the trainings continue from their checkpoints, then the evaluation). CPU dry run (docs/device.md): DEVICE_DRY=1 bash benchmarks/device/family_study.sh
set -u
T0=$(date +%s)
. benchmarks/device/setup.sh > /dev/null || exit 1
BUDGET=${BUDGET_S:-560}
left() { echo $((T0 + BUDGET - $(date +%s))); }
ENV_ID=${ENV_ID:-Go2Walk-v0}; FAMILY=${FAMILY:-velocity}; RUN=$RUNS/family_study_data
WORK=$RUNS/family_study${STUDY_WORK:-}; LOGS=${WORK}_logs  # STUDY_WORK: a study beside another
NGPU=${NGPU:-$(gpu_count)}  # NGPU=1 with CUDA_VISIBLE_DEVICES=K: the study on GPU K alone
mkdir -p "$LOGS"
SET=(--set "family.families=[$FAMILY]" --set "family.envs=[$ENV_ID]"
     --set "family_collect.num_histories=${HISTORIES:-512}" --set "family_collect.max_episode_steps=${EP_STEPS:-500}"
     ${STEPS_PER_HISTORY:+--set family_collect.steps_per_history=$STEPS_PER_HISTORY}
     ${GROUP_SIZE:+--set family_collect.group_size=$GROUP_SIZE})
# the pipeline's family dataset config (same names, seeds and collect sections as its family_collect stage)
write_config() {  # write_config OUT_YAML [extra --set values...]: prints the dataset's folder under data/
  python3 - "$@" <<'EOF'
import sys
from go2bench.pipeline import pipeline_config
from go2bench.pipeline.family import family_datasets
from go2bench.pipeline.stages import write_dataset_config
out, sets = sys.argv[1], [a for a in sys.argv[2:] if a != "--set"]
cfg = pipeline_config("gpu", sets)
(d,) = family_datasets(cfg, cfg.family.families[0])
write_dataset_config(cfg, __import__("pathlib").Path(out), items=[d])
print(d.path)
EOF
}
collect() {  # collect NAME [--set ...]: prints the dataset folder; fails unless the collection completed
  mkdir -p "$RUN/$1"
  local path rc; path=$(write_config "$RUN/$1/config.yaml" "${SET[@]}" "${@:2}" | tail -1) || return 1
  timeout -k 5 $(( $(left) - 200 )) python3 -m go2bench.cli collect --config "$RUN/$1/config.yaml" \
    --data-dir "$RUN/$1/data" --backend "$BACKEND" --resume --no-progress-bar > "$LOGS/collect_$1.log" 2>&1
  rc=$?
  echo "collect $1 exit $rc at $(( $(date +%s) - T0 )) s" >&2
  [ $rc = 0 ] || return 1
  echo "$RUN/$1/data/$path"
}
finish() {
  ship "study${STUDY_WORK:-}" "$RESULTS/${STUDY_OUT:-family_study}" $(find "$WORK" \( -name '*.json' -o -name '*.yaml' \) 2>/dev/null | grep -v '/references/')
  ship "study${STUDY_WORK:-}_logs" "$LOGS" $(find "$WORK" -name '*.log' 2>/dev/null)
  save_caches
  echo "call took $(( $(date +%s) - T0 )) s"
  exit "$1"
}
# every dataset's collection at once (one process each: a 512-env collection leaves most of an H200 idle)
mkdir -p "$RUN"
IFS=';' read -r -a ALTS <<< "${ALT_SETS:-}"
collect main > "$RUN/main.path" &
for a in "${ALTS[@]}"; do
  label=${a%%:*}; sets=${a#*:}
  collect "$label" $(for s in $sets; do echo --set "$s"; done) > "$RUN/$label.path" &
done
wait
DATA=$(tail -1 "$RUN/main.path")
[ -n "$DATA" ] || { echo "!!!!!!!! family_study STOPPED: collection 'main' failed or ran out of time ($LOGS/collect_main.log):" \
  "$(tail -n 1 "$LOGS/collect_main.log")"; finish 1; }
ALT=()
for a in "${ALTS[@]}"; do
  label=${a%%:*}; path=$(tail -1 "$RUN/$label.path")
  [ -n "$path" ] || { echo "!!!!!!!! family_study STOPPED: collection '$label' failed ($LOGS/collect_$label.log):" \
    "$(tail -n 1 "$LOGS/collect_$label.log")"; finish 1; }
  ALT+=(--alt-dataset "$label=$path")
done
[ -n "${ALT_DATASET:-}" ] && ALT+=(--alt-dataset "$ALT_DATASET")
timeout -k 10 $(( $(left) - 25 )) python3 benchmarks/family_study.py --dataset "$DATA" --preset gpu \
  --budget-s $(( $(left) - 35 )) --eval-reserve-s ${EVAL_RESERVE_S:-220} ${TRAIN_ONLY:+--train-only} \
  ${WARMUP:+--warmup-steps $WARMUP} --jobs ${JOBS:-4} --gpus "$NGPU" \
  --max-steps ${TRAIN_STEPS:-3000} --set num_workers=${WORKERS:-2} --set device=$DEVICE ${MODEL:+--set model=$MODEL} \
  ${CONTEXT:+--set context_len=$CONTEXT} ${TRAIN_SEED:+--set seed=$TRAIN_SEED} ${SPARSITY:+--set trajectory_sparsity=$SPARSITY} \
  ${TRAIN_SEEDS:+--train-seeds $TRAIN_SEEDS} ${VARIANTS:+--variants $VARIANTS} "${ALT[@]}" \
  --reference-agent teacher-blind --backend "$BACKEND" --device "$DEVICE" --seeds ${SEEDS:-0,1} --episodes ${EPISODES:-10} \
  ${TRIALS:+--trials $TRIALS} ${EVAL_EP_STEPS:+--max-episode-steps $EVAL_EP_STEPS} --work "$WORK/$(basename "$DATA")" \
  --out-dir "$RESULTS/${STUDY_OUT:-family_study}" > "$LOGS/family_study.log" 2>&1
rc=$?
echo "family study exit $rc at $(( $(date +%s) - T0 )) s"
tail -n 30 "$LOGS/family_study.log"
finish $rc
