#!/usr/bin/env bash
# Leave-one-robot-out (split robots-v0) at GPU scale in one 2-GPU device call (issue 17):
#   1. default-task histories of all five robots by their shipped teachers (the gpu pipeline's collect section,
#      one `go2bench collect` per robot, spread over ROBOT_GPUS; HIST histories x 10,000 steps, 1000-step episodes);
#   2. per fold: the four training robots pooled (`go2bench data robot-split`), a seed-size Vintix trained on
#      them (all five folds at once, spread over the GPUs, bounded by TRAIN_MIN minutes each);
#   3. per fold: `go2bench eval --robots-split robots-v0 --held-out R` from a cold start on the held-out robot.
# Everything is bounded from inside so processes exit cleanly and the kernel caches are written.
#   run(kind="nvidia-h200-x2", carry=[".devpack/p1", ".whl", ".devpack/cache", ".gl"], timeout_s=600,
#       command="for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig; bash benchmarks/device/robots_split.sh")
# Brings back: rs_results.tar.xz (eval JSONs, training metrics and configs, logs, dataset JSONs), the fold
# checkpoints in two tars, and the caches.
set -u
T0=${T0:-$(date +%s)}  # a caller running other tracks beside this one passes its T0 and BUDGET_S
BUDGET=${BUDGET_S:-540}
HIST=${HIST:-256}
TRAIN_STEPS=${TRAIN_STEPS:-3000}
TRAIN_MIN=${TRAIN_MIN:-2.2}
[ -n "${DEVICE_READY:-}" ] || { . benchmarks/device/setup.sh > /dev/null || exit 1; }
left() { echo $((T0 + BUDGET - $(date +%s))); }
GPUS=(${ROBOT_GPUS:-0 1})  # the GPUs this track uses, round robin
gpu_of() { echo ${GPUS[$(($1 % ${#GPUS[@]}))]}; }
RUN=runs/robots_split
ROBOTS="go2 mini_cheetah a1 go1 anymal_c"
mkdir -p $RUN/folds "$OUT"

echo "== collect at $(( $(date +%s) - T0 )) s"
# the run's dataset configs (one per robot, and the five together) as the gpu pipeline writes them
python3 - "$RUN" "$HIST" <<'PY' || exit 1
import sys
from pathlib import Path
from go2bench.pipeline.config import PRESETS, apply_overrides
from go2bench.pipeline.stages import datasets, write_dataset_config
run, hist = Path(sys.argv[1]), sys.argv[2]
cfg = apply_overrides(PRESETS["gpu"], ["envs=[Go2Walk-v0, MiniCheetahWalk-v0, A1Walk-v0, Go1Walk-v0, AnymalCWalk-v0]",
                                       f"collect.num_histories={hist}", "family.families=[]"])
write_dataset_config(cfg, run / "dataset_config.yaml")
for d in datasets(cfg):
    write_dataset_config(cfg, run / f"dataset_config_{d.name}.yaml", only=d)
PY
i=0
for c in $RUN/dataset_config_*.yaml; do
  (
    CUDA_VISIBLE_DEVICES=$(gpu_of $i) timeout -k 5 $(( $(left) - ${EVAL_TRAIN_RESERVE:-300} )) python3 -m go2bench.cli collect --config $c \
      --data-dir $RUN/data --backend gpu --resume --no-progress-bar
    echo "collect $c exit $? at $(( $(date +%s) - T0 )) s"
  ) > $RUN/collect_$(basename $c .yaml).log 2>&1 &
  i=$((i + 1))
done
wait
grep -h "exit" $RUN/collect_*.log

echo "== pool and train at $(( $(date +%s) - T0 )) s"
i=0
for r in $ROBOTS; do
  python3 -m go2bench.cli data robot-split --held-out $r --config $RUN/dataset_config.yaml --data-dir $RUN/data \
    > $RUN/folds/pool_$r.log 2>&1 || { echo "pool $r failed"; cat $RUN/folds/pool_$r.log; }
  (
    CUDA_VISIBLE_DEVICES=$(gpu_of $i) timeout -k 5 $(( $(left) - 150 )) python3 -m go2bench.cli train \
      --data_dir $RUN/data --dataset_config_paths $RUN/data/robots-v0/robots-v0_heldout_$r.yaml \
      --name heldout_$r --out_dir $RUN/folds --model seed --context_len 2048 --batch_size 8 \
      --trajectory_sparsity 128 --epochs 1 --save_every 1 --max_steps $TRAIN_STEPS --max_minutes $TRAIN_MIN \
      --lr 3e-4 --num_workers 2 --device cuda --no_progress_bar --log_every 100
    echo "train $r exit $? at $(( $(date +%s) - T0 )) s"
  ) > $RUN/folds/train_$r.log 2>&1 &
  i=$((i + 1))
done
wait
grep -h "exit" $RUN/folds/train_*.log

echo "== eval at $(( $(date +%s) - T0 )) s"
i=0
for r in $ROBOTS; do
  (
    CUDA_VISIBLE_DEVICES=$(gpu_of $i) timeout -k 5 $(( $(left) - 25 )) python3 -m go2bench.cli eval \
      --agent vintix:$RUN/folds/heldout_$r --robots-split robots-v0 --held-out $r --backend gpu --device cuda \
      --no-progress --out $RUN/folds/eval_heldout_$r.json
    echo "eval $r exit $? at $(( $(date +%s) - T0 )) s"
  ) > $RUN/folds/eval_$r.log 2>&1 &
  i=$((i + 1))
done
wait
for r in $ROBOTS; do tail -n 6 $RUN/folds/eval_$r.log; done

(cd $RUN && find . -type f \( -name '*.json' -o -name '*.log' -o -name '*.yaml' -o -name '*.jsonl' -o -name '*.md' \) \
   -size -4M -not -name '*.pt' | tar -cJf "$OUT/rs_results.tar.xz" -T -)
(cd $RUN/folds && tar -cf "$OUT/rs_models_a.tar" $(ls -d heldout_go2/final.pt heldout_mini_cheetah/final.pt heldout_a1/final.pt 2>/dev/null))
(cd $RUN/folds && tar -cf "$OUT/rs_models_b.tar" $(ls -d heldout_go1/final.pt heldout_anymal_c/final.pt 2>/dev/null))
[ "${SAVE_CACHES:-0}" = 1 ] && [ -z "${DEVICE_READY:-}" ] && save_caches
ls -la "$OUT"
echo "call took $(( $(date +%s) - T0 )) s"
