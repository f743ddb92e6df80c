#!/usr/bin/env bash
# Leave-one-robot-out (split robots-v0) at GPU scale on a 2-GPU machine (issue 17), in phases:
#   collect  default-task histories of all five robots by their shipped teachers (the gpu pipeline's collect
#            section; HIST histories x STEPS_PER_HISTORY steps, EP_STEPS-step episodes): one `go2bench collect` per
#            robot, all at once, round robin over ROBOT_GPUS (default: every GPU), so that their scene builds (CPU
#            work) overlap; processes sharing a GPU time-slice its stepping (five on one H200: 8.8-14.6k env-steps/s
#            each), which loses no total throughput for latency-bound scenes. ONE_AT_A_TIME=1: one per GPU at a time;
#   pool     per fold the four training robots pooled (`go2bench data robot-split`);
#   train    per fold a seed-size Vintix (all five at once over ROBOT_GPUS, TRAIN_MIN minutes each at most);
#   eval     per fold `go2bench eval --robots-split robots-v0 --held-out R`, all at once over ROBOT_GPUS: the fold's
#            Vintix beside its no-context ablation (vintix-nocontext, the same checkpoint) in one scene.
# A phase that fails or does not finish STOPS the script with one line (incomplete datasets are never pooled).
# Phases are resumable across CHAINED calls on a warm machine: the run folder ($RUNS/robots_split) stays on the
# device between calls while it is warm, a complete phase (or fold) is skipped, an interrupted collection resumes.
# The expected chaining is printed at the start; with the defaults: call A collect + pool + train, call B eval.
#   run(kind="nvidia-h200-x2", carry=[".devpack/p1", ".whl", ".devpack/cache", ".gl"], timeout_s=600,
#       command="for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig; bash benchmarks/device/robots_split.sh")
#   (call B: the same command, within the warm machine's idle time)
# Every call brings back rs_results.tar.xz (eval JSONs, training metrics, configs, logs, dataset JSONs) and, once
# trained, rs_models.tar.xz (the folds' weights-only checkpoints and model card skeletons, `go2bench export`;
# split into parts above 15 MB: cat rs_models.tar.xz.part-* | tar -xJ), and with SAVE_CACHES=1 the caches.
# CPU dry run (docs/device.md): DEVICE_DRY=1 bash benchmarks/device/robots_split.sh
# FAMILY=velocity (or dynamics): the same phases on a task family, in $RUNS/robots_split_<family>: each robot's
# family histories (train thetas) by its shipped privileged teacher (the gpu pipeline's family_collect section with
# the sizes above), pooled per fold as robots-v0_heldout_<robot>_<family>, and evaluated with `--family <family>`
# (the held-out robot's test thetas; TRIALS: the first N of them; EVAL_ENVS is not used).
set -u
T0=${T0:-$(date +%s)}  # a caller running other tracks beside this one passes its T0 and BUDGET_S
TOP=1; [ -n "${DEVICE_READY:-}" ] && TOP=0
. benchmarks/device/setup.sh > /dev/null || exit 1
BUDGET=${BUDGET_S:-540}  # after setup.sh: a dry run sets a CPU-sized default
HIST=${HIST:-256}; STEPS=${STEPS_PER_HISTORY:-10000}; EP=${EP_STEPS:-1000}; GROUP=${GROUP_SIZE:-2000}
TRAIN_STEPS=${TRAIN_STEPS:-3000}; TRAIN_MIN=${TRAIN_MIN:-2.2}; RESERVE=${SHIP_RESERVE_S:-40}
left() { echo $((T0 + BUDGET - $(date +%s))); }
at() { echo "$(( $(date +%s) - T0 )) s"; }
read -r -a GPUS <<< "${ROBOT_GPUS:-$(seq -s ' ' 0 $(( $(gpu_count) - 1 )))}"
NG=${#GPUS[@]}
FAMILY=${FAMILY:-}; SUF=${FAMILY:+_$FAMILY}  # a family's folds: their pooled datasets end in _<family>
RUN=$RUNS/robots_split$SUF
ROBOTS=(go2 mini_cheetah a1 go1 anymal_c)
mkdir -p "$RUN/folds" "$RUN/logs" "$RUN/export"

finish() {  # finish STATUS: ship what there is (results, then models separately), then exit
  (cd "$RUN" && find . -path ./data -prune -o -path ./export -prune -o -type f -size -4M \
     \( -name '*.json' -o -name '*.log' -o -name '*.yaml' -o -name '*.jsonl' -o -name '*.md' \) -print) > /tmp/rs_list
  (cd "$RUN" && find ./data -maxdepth 3 -type f \( -name '*.json' -o -name '*.png' \) -size -4M) >> /tmp/rs_list 2>/dev/null
  mapfile -t files < /tmp/rs_list
  ship rs_results -C "$RUN" "${files[@]}"
  local models=(); mapfile -t models < <(cd "$RUN" && ls export/* 2>/dev/null)
  [ ${#models[@]} -gt 0 ] && ship rs_models -C "$RUN" "${models[@]}"
  [ "${SAVE_CACHES:-0}" = 1 ] && [ "$TOP" = 1 ] && save_caches
  ls -la "$OUT"; echo "call took $(at)"
  exit "$1"
}
stop() { echo "!!!!!!!! robots_split STOPPED in phase $1 at $(at): ${*:2}"; finish 1; }
later() {  # a phase that does not fit in what is left of this call: the next chained call continues with it
  echo ">>>>>>>> robots_split: phase $1 needs ~$2 s, $(left) s are left: it runs in the NEXT call (same command," \
       "on the warm machine: $RUN is kept there)"
  finish 0
}

# the plan: all collections at once over the GPUs (ONE_AT_A_TIME=1: one per GPU at a time), then the trainings,
# then the evaluations. A latency-bound collection steps at ~2.6 ms per batch step whatever its histories; five
# 128-history collections time-slicing one H200 made 8.8-14.6k env-steps/s each (results/robots_split_attempts)
per_gpu=$(( (5 + NG - 1) / NG ))
step_ms=${STEP_MS:-3}  # ms per batch step of one collection alone on a GPU
if [ "${ONE_AT_A_TIME:-0}" = 1 ]; then
  est_c=$(( per_gpu * (STEPS * step_ms / 1000 + ${BUILD_S:-60}) )); est_e=$(( per_gpu * ${EVAL_S:-150} ))
else
  est_c=$(( ${BUILD_S:-60} * 2 + per_gpu * STEPS * step_ms / 1000 )); est_e=$(( ${BUILD_S:-60} * 2 + per_gpu * ${EVAL_STEP_S:-100} ))
fi
est_t=$(python3 -c "print(int($TRAIN_MIN * 60 + 60))")
echo "== robots_split plan ($NG GPU(s): ${GPUS[*]}; ~$per_gpu robots per GPU): collect ~$est_c s (at an assumed" \
     "$step_ms ms per batch step), train ~$est_t s, eval ~$est_e s; this call has $(left) s"
python3 - "$(left)" "${CALL_S:-540}" "$RESERVE" "$est_c" "$est_t" "$est_e" <<'PY'
import sys
budget, call, reserve, *need = map(int, sys.argv[1:])
calls, room = [[]], budget - reserve
for phase, s in zip(("collect + pool", "train", "eval"), need):
    if s > room and calls[-1]:
        calls.append([])
        room = call - reserve
    calls[-1].append(phase)
    room -= s
print("== expected chaining: " + "; ".join(f"call {chr(65 + i)}: {' + '.join(c)}" for i, c in enumerate(calls))
      + ("" if len(calls) == 1 else " (a phase longer than a call is resumed in the next one)"))
PY

echo "== collect at $(at)"
# the run's dataset configs (one per robot, and the five together) as the gpu pipeline writes them
python3 - "$RUN" "$HIST" "$STEPS" "$EP" "$GROUP" "$FAMILY" <<'PY' || stop collect "could not write the dataset configs"
import sys
from pathlib import Path
from go2bench.pipeline.config import PRESETS, apply_overrides
from go2bench.pipeline.family import family_datasets
from go2bench.pipeline.stages import datasets, write_dataset_config
run, hist, steps, ep, group, family = Path(sys.argv[1]), *sys.argv[2:]
envs = "[Go2Walk-v0, MiniCheetahWalk-v0, A1Walk-v0, Go1Walk-v0, AnymalCWalk-v0]"
sizes = [f"{s}.{k}={v}" for s in ("collect", "family_collect") for k, v in (
    ("num_histories", hist), ("steps_per_history", steps), ("max_episode_steps", ep), ("group_size", group))]
cfg = apply_overrides(PRESETS["gpu"], [f"envs={envs}", f"family.envs={envs}", *sizes,
                                       f"family.families=[{family}]"])
items = family_datasets(cfg, family) if family else datasets(cfg)  # a family's: train thetas, privileged teachers
write_dataset_config(cfg, run / "dataset_config.yaml", items=items)
for d in items:
    write_dataset_config(cfg, run / f"dataset_config_{d.name}.yaml", only=d, items=items)
PY
collect_queue() {  # collect_queue GPU CONFIG...: this GPU's collections, one at a time; stops at the first failure
  local gpu=$1 c name rc; shift
  for c in "$@"; do
    name=$(basename "$c" .yaml); name=${name#dataset_config_}
    if [ -f "$RUN/collect_$name.done" ]; then echo "collect $name: complete (skipped)"; continue; fi
    CUDA_VISIBLE_DEVICES=$gpu timeout -k 5 $(( $(left) - RESERVE )) python3 -m go2bench.cli collect --config "$c" \
      --data-dir "$RUN/data" --backend "$BACKEND" --resume --no-progress-bar >> "$RUN/logs/collect_$name.log" 2>&1
    rc=$?
    echo "collect $name on GPU $gpu: exit $rc at $(at)"
    [ $rc = 0 ] || return 1
    touch "$RUN/collect_$name.done"
  done
}
configs=("$RUN"/dataset_config_*.yaml)
if [ "${ONE_AT_A_TIME:-0}" = 1 ]; then  # per GPU one collection at a time
  for g in $(seq 0 $((NG - 1))); do
    mine=(); for i in "${!configs[@]}"; do [ $((i % NG)) = "$g" ] && mine+=("${configs[$i]}"); done
    collect_queue "${GPUS[$g]}" "${mine[@]}" &
  done
else  # all at once, round robin over the GPUs: the scene builds (CPU work, 35-100 s) overlap; the stepping
  # time-slices each GPU, which costs no total throughput for latency-bound scenes
  for i in "${!configs[@]}"; do collect_queue "${GPUS[$((i % NG))]}" "${configs[$i]}" & done
fi
wait
missing=(); for c in "${configs[@]}"; do n=$(basename "$c" .yaml); n=${n#dataset_config_}; [ -f "$RUN/collect_$n.done" ] || missing+=("$n"); done
[ ${#missing[@]} = 0 ] || stop collect "datasets incomplete: ${missing[*]} (logs: $RUN/logs/collect_*.log; exit 124 = out of" \
  "time: the same command on the warm machine resumes them); nothing is pooled"

echo "== pool at $(at)"
for r in "${ROBOTS[@]}"; do
  [ -f "$RUN/data/robots-v0/robots-v0_heldout_$r$SUF.yaml" ] && continue
  python3 -m go2bench.cli data robot-split --held-out "$r" --config "$RUN/dataset_config.yaml" --data-dir "$RUN/data" \
    > "$RUN/logs/pool_$r.log" 2>&1 || stop pool "fold $r: $(tail -n 1 "$RUN/logs/pool_$r.log")"
done

echo "== train at $(at)"
todo=(); for r in "${ROBOTS[@]}"; do [ -f "$RUN/folds/heldout_$r/train_summary.json" ] || todo+=("$r"); done
if [ ${#todo[@]} -gt 0 ]; then
  [ "$(left)" -ge $((est_t + RESERVE)) ] || later train "$est_t"
  for i in "${!todo[@]}"; do
    r=${todo[$i]}
    resume=(); [ -f "$RUN/folds/heldout_$r/latest.json" ] && resume=(--resume)
    (
      CUDA_VISIBLE_DEVICES=${GPUS[$((i % NG))]} timeout -k 5 $(( $(left) - RESERVE )) python3 -m go2bench.cli train \
        --data_dir "$RUN/data" --dataset_config_paths "$RUN/data/robots-v0/robots-v0_heldout_$r$SUF.yaml" \
        --name "heldout_$r" --out_dir "$RUN/folds" --model "${MODEL:-seed}" --context_len "${CONTEXT:-2048}" \
        --batch_size 8 --trajectory_sparsity "${SPARSITY:-128}" --epochs 1 --save_every 1 --max_steps "$TRAIN_STEPS" \
        --max_minutes "$TRAIN_MIN" --lr 3e-4 --num_workers "${WORKERS:-2}" --device "$DEVICE" --no_progress_bar \
        --log_every 100 "${resume[@]}"
      echo "train $r exit $? at $(at)"
    ) >> "$RUN/logs/train_$r.log" 2>&1 &
  done
  wait
  grep -h "^train .* exit" "$RUN"/logs/train_*.log
fi
for r in "${ROBOTS[@]}"; do
  [ -f "$RUN/folds/heldout_$r/train_summary.json" ] || stop train "fold $r did not finish: $(tail -n 2 "$RUN/logs/train_$r.log" | tr '\n' ' ')"
  [ -f "$RUN/export/heldout_$r.pt" ] || python3 -m go2bench.cli export "$RUN/folds/heldout_$r" --out "$RUN/export/heldout_$r.pt" \
    --card "$RUN/export/heldout_${r}_card.json" >> "$RUN/logs/export.log" 2>&1 || stop train "export of fold $r failed: $(tail -n 1 "$RUN/logs/export.log")"
done

echo "== eval at $(at)"
if [ -n "$FAMILY" ]; then per_env=(--family "$FAMILY" ${TRIALS:+--trials $TRIALS}); else per_env=(${EVAL_ENVS:+--num-envs $EVAL_ENVS}); fi
eval_args=("${per_env[@]}" ${EPISODES:+--episodes $EPISODES} ${SEEDS:+--seeds $SEEDS}
           ${WARMUP:+--warmup-steps $WARMUP}
           ${EVAL_EP_STEPS:+--max-episode-steps $EVAL_EP_STEPS})
eval_queue() {  # eval_queue GPU ROBOT...: this GPU's evaluations, one at a time
  local gpu=$1 r rc; shift
  for r in "$@"; do
    [ -f "$RUN/folds/eval_heldout_$r.done" ] && continue
    CUDA_VISIBLE_DEVICES=$gpu timeout -k 5 $(( $(left) - RESERVE )) python3 -m go2bench.cli eval \
      --agent "vintix:$RUN/export/heldout_$r.pt" --agent "vintix-nocontext:$RUN/export/heldout_$r.pt" \
      --robots-split robots-v0 --held-out "$r" --backend "$BACKEND" --device "$DEVICE" --no-progress \
      "${eval_args[@]}" --out "$RUN/folds/eval_heldout_$r" >> "$RUN/logs/eval_$r.log" 2>&1
    rc=$?
    echo "eval $r on GPU $gpu: exit $rc at $(at)"
    [ $rc = 0 ] || return 1
    touch "$RUN/folds/eval_heldout_$r.done"
  done
}
if [ "${ONE_AT_A_TIME:-0}" = 1 ]; then
  for g in $(seq 0 $((NG - 1))); do
    mine=(); for i in "${!ROBOTS[@]}"; do [ $((i % NG)) = "$g" ] && mine+=("${ROBOTS[$i]}"); done
    eval_queue "${GPUS[$g]}" "${mine[@]}" &
  done
else
  for i in "${!ROBOTS[@]}"; do eval_queue "${GPUS[$((i % NG))]}" "${ROBOTS[$i]}" & done
fi
wait
missing=(); for r in "${ROBOTS[@]}"; do [ -f "$RUN/folds/eval_heldout_$r.done" ] || missing+=("$r"); done
[ ${#missing[@]} = 0 ] || stop eval "folds not evaluated: ${missing[*]} (logs: $RUN/logs/eval_*.log; the same command" \
  "on the warm machine evaluates them)"
for r in "${ROBOTS[@]}"; do tail -n 4 "$RUN/logs/eval_$r.log"; done
echo "== robots_split COMPLETE at $(at)"
finish 0
