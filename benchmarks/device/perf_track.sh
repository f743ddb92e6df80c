#!/usr/bin/env bash
# Issue 16's GPU measurements on ONE GPU, one after the other (each bounded; a step that does not fit in what is
# left is skipped and says so). Reads T0 and BUDGET (a caller's; default: now and BUDGET_S); usage:
#   PERF_GPU=0 PERF_STEPS="teacher:Go2Walk-v0 eval collect env:4096" bash benchmarks/device/perf_track.sh
# Steps:
#   teacher:ENV   one SB3 PPO teacher alone, on-device rollouts, 4096 envs: time to training return 15/20/21
#   eval          Vintix decode: one-env loop vs batched eager vs the CUDA-graph decode variants (eval_throughput.py's
#                 default --variants), 64 and 256 envs; each call stops starting variants 10 s inside its cap
#   eval_compile  the same at 64 envs for the graph against its torch.compile'd variants (compiling: its own cap)
#   collect       collection rows/s vs the raw loop, 1024 and 4096 histories (COLLECT_ARGS: steps and reps); it
#                 stops itself 10 s inside its cap (--max-seconds) with its JSON written, marked incomplete
#   collect_profile  where a collection step's time goes beyond the raw loop (per part, torch ops per step and per
#                 reset), PROFILE_ENVS histories (default 1024), PROFILE_STEPS steps per timed round (default 2000)
#   env:N[,M]     env-steps/s of the numpy and torch vector envs vs the raw Genesis loop at N (and M) envs
#   build         fresh-process scene builds (benchmarks/device/build_cache_probe.sh if present)
# JSON goes to $RESULTS (benchmarks/results), logs to $PERF_LOGS ($RUNS/perf_logs); the caller ships both.
# DEVICE_DRY=1: the steps that only measure CUDA (teacher, eval, build) are SKIPPED and say so; env and collect
# run on the CPU at the sizes given (e.g. PERF_STEPS="env:2" COLLECT_ARGS="--steps 100 --reps 1 --warmup-steps 50").
set -u
T0=${T0:-$(date +%s)}
. benchmarks/device/setup.sh > /dev/null || exit 1
BUDGET=${BUDGET:-${BUDGET_S:-540}}
export CUDA_VISIBLE_DEVICES=${PERF_GPU:-0}
left() { echo $((T0 + BUDGET - $(date +%s))); }
PERF_LOGS=${PERF_LOGS:-$RUNS/perf_logs}
mkdir -p "$PERF_LOGS" "$RESULTS"
cuda_only() {  # true (and says so) when a step measures CUDA only and this is a CPU dry run
  [ "${DEVICE_DRY:-0}" = 1 ] || return 1
  say "SKIPPED $1 in the CPU dry run: it measures CUDA only"
}
say() { echo "[perf $(( $(date +%s) - T0 )) s] $*"; }
cap_for() { local l; l=$(left); echo $(( $1 < l - 15 ? $1 : l - 15 )); }  # cap_for CAP_S: what step will allow
step() {  # step NAME NEEDED_S CAP_S CMD...: runs CMD bounded by min(CAP, left - 15) if NEEDED_S seconds are left
  local name=$1 need=$2 cap=$3; shift 3
  local l; l=$(left)
  if [ "$l" -lt "$need" ]; then say "SKIPPED $name: $l s left, needs $need"; return; fi
  local t; t=$(cap_for "$cap")
  say "start $name (cap $t s)"
  timeout -k 5 "$t" "$@" > "$PERF_LOGS/$name.log" 2>&1
  say "end $name: exit $?"
  tail -n 25 "$PERF_LOGS/$name.log"
}
for s in ${PERF_STEPS:-teacher:Go2Walk-v0 eval collect env:4096}; do
  case $s in
    teacher:*) env=${s#teacher:}
      cuda_only "$s" || step "teacher_$env" 200 ${TEACHER_CAP:-300} python3 benchmarks/teacher_rollout_modes.py --env "$env" --backend "$BACKEND" \
        --device "$DEVICE" --num-envs 4096 --modes device --train-seconds ${TEACHER_SECONDS:-170} --no-warmup \
        --out "$RESULTS/teacher_rollout_modes_gpu_${env}_4096.json" ;;
    eval)  # --max-seconds 10 s inside the cap: variants that would not fit are skipped, the JSON written
      cuda_only eval && continue
      cap=$(cap_for 90)
      step eval_64 60 "$cap" python3 benchmarks/eval_throughput.py --device cuda --checkpoint go2bench/zoo/vintix/vintix.pt \
        --steps 200 --num-envs 64 --max-seconds $(( cap - 10 )) --out "$RESULTS/eval_throughput_cuda_graph_64.json"
      cap=$(cap_for 80)
      step eval_256 50 "$cap" python3 benchmarks/eval_throughput.py --device cuda --checkpoint go2bench/zoo/vintix/vintix.pt \
        --steps 200 --num-envs 256 --max-seconds $(( cap - 10 )) --out "$RESULTS/eval_throughput_cuda_graph_256.json" ;;
    eval_compile)
      cuda_only eval_compile && continue
      cap=$(cap_for ${EVAL_COMPILE_CAP:-240})
      step eval_compile_64 120 "$cap" python3 benchmarks/eval_throughput.py --device cuda \
        --checkpoint go2bench/zoo/vintix/vintix.pt --steps 200 --num-envs 64 --max-seconds $(( cap - 10 )) \
        --variants graph,graph-compiled,graph-compiled-fp16kv-nomask,graph-compiled-matmul \
        --out "$RESULTS/eval_throughput_cuda_graph_compiled_64.json" ;;
    collect)  # --max-seconds 10 s inside the cap: a cut run stops itself and leaves its JSON (marked incomplete).
      # Histories of the gpu preset's length (10,000 steps, one round): the per-history file costs (~5 ms each,
      # benchmarks/RESULTS.md "Collection at thousands of histories") are then spread over 5x more steps than with 2,000-step ones
      cap=$(cap_for ${COLLECT_CAP:-420})
      step collect 200 "$cap" python3 benchmarks/collect_throughput.py --backend "$BACKEND" \
        --num-envs "${COLLECT_ENVS:-1024,4096}" ${COLLECT_ARGS:---steps 10000 --reps 1} --max-seconds $(( cap - 10 )) \
        --out "$RESULTS/collect_throughput_$BACKEND.json" ;;
    collect_profile)
      step collect_profile 150 ${PROFILE_CAP:-240} python3 benchmarks/collect_step_profile.py --backend "$BACKEND" \
        --num-envs ${PROFILE_ENVS:-1024} --steps ${PROFILE_STEPS:-2000} --reps 2 \
        --out "$RESULTS/collect_step_profile_${BACKEND}_${PROFILE_ENVS:-1024}.json" ;;
    env:*) n=${s#env:}  # one N or a comma list (scenes per N: one raw, one go2bench)
      step "env_${n//,/_}" 120 ${ENV_CAP:-300} python3 benchmarks/env_throughput.py --backend "$BACKEND" --num-envs "$n" \
        ${ENV_ARGS:-} --out "$RESULTS/env_throughput_${BACKEND}_Go2Walk-v0_${n//,/_}.json" ;;
    build)
      cuda_only build || { [ -f benchmarks/device/build_cache_probe.sh ] && step build 120 ${BUILD_CAP:-240} bash benchmarks/device/build_cache_probe.sh; } ;;
    *) say "unknown step $s" ;;
  esac
done
say "perf track done"
