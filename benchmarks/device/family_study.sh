#!/usr/bin/env bash
# Issue 17's study in one device call (<= 560 s, collection included): collects one robot x family dataset
# on the train thetas as the pipeline's family stage does (its dataset config, `go2bench collect`; the 10k-step
# parallel layout: 512 histories x 10k steps of 500-step episodes by default), optionally a second dataset with
# other collection settings (ALT_SET, e.g. "family_collect.p=1.0" for another noise schedule, or
# "family_collect.steps_per_history=20000" for longer histories), then benchmarks/family_study.py: every
# variant trained JOBS at a time per GPU and evaluated with the blind teacher as a reference row.
# The 1M-step seed layout (10 histories x 1M steps) cannot be collected within one 10-minute call: collect it
# over several calls (carry its folder) and pass it as ALT_DATASET=LABEL=FOLDER.
#   run(kind="nvidia-h200", carry=[".devpack/p1", ".gl", ".whl", ".devpack/cache"], timeout_s=600,
#       command="ENV_ID=Go2Walk-v0 FAMILY=velocity bash benchmarks/device/family_study.sh")
# Brings back study.tar.xz (the table, results JSON, logs, train summaries) and the kernel caches.
set -u
T0=$(date +%s)
BUDGET=${BUDGET_S:-560}
left() { echo $((T0 + BUDGET - $(date +%s))); }
. benchmarks/device/setup.sh > /dev/null || exit 1
ENV_ID=${ENV_ID:-Go2Walk-v0}; FAMILY=${FAMILY:-velocity}; RUN=runs/family_study_data
NGPU=$(python3 -c "import torch; print(max(1, torch.cuda.device_count()))")
SET=(--set "family.families=[$FAMILY]" --set "family.envs=[$ENV_ID]"
     --set "family_collect.num_histories=${HISTORIES:-512}" --set "family_collect.max_episode_steps=${EP_STEPS:-500}")
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
collect() {  # collect NAME [--set ...]: prints the dataset folder
  mkdir -p "$RUN/$1"
  local path; path=$(write_config "$RUN/$1/config.yaml" "${SET[@]}" "${@:2}" | tail -1) || return 1
  timeout -k 5 $(( $(left) - 200 )) python3 -m go2bench.cli collect --config "$RUN/$1/config.yaml" \
    --data-dir "$RUN/$1/data" --backend gpu --resume --no-progress-bar > "$OUT/collect_$1.log" 2>&1
  echo "collect $1 exit $? at $(( $(date +%s) - T0 )) s" >&2
  echo "$RUN/$1/data/$path"
}
DATA=$(collect main)
ALT=()
if [ -n "${ALT_SET:-}" ]; then
  ALT_DATA=$(collect alt $(for s in $ALT_SET; do echo --set "$s"; done))
  ALT=(--alt-dataset "${ALT_LABEL:-alt}=$ALT_DATA")
fi
[ -n "${ALT_DATASET:-}" ] && ALT+=(--alt-dataset "$ALT_DATASET")
timeout -k 10 $(( $(left) - 25 )) python3 benchmarks/family_study.py --dataset "$DATA" --preset gpu \
  --budget-s $(( $(left) - 35 )) --eval-reserve-s ${EVAL_RESERVE_S:-220} --jobs ${JOBS:-4} --gpus "$NGPU" \
  --max-steps ${TRAIN_STEPS:-3000} --set num_workers=${WORKERS:-2} ${VARIANTS:+--variants $VARIANTS} "${ALT[@]}" \
  --reference-agent teacher-blind --backend gpu --device cuda --seeds ${SEEDS:-0,1} --episodes ${EPISODES:-10} \
  ${TRIALS:+--trials $TRIALS} --work runs/family_study --out-dir benchmarks/results/family_study \
  > "$OUT/family_study.log" 2>&1
echo "family study exit $? at $(( $(date +%s) - T0 )) s"
tail -n 30 "$OUT/family_study.log"
tar -cJf "$OUT/study.tar.xz" benchmarks/results/family_study "$OUT"/collect_*.log \
  $(find runs/family_study -name '*.json' -o -name '*.log' -o -name '*.yaml' | grep -v '/references/') 2>/dev/null
save_caches
echo "call took $(( $(date +%s) - T0 )) s"
