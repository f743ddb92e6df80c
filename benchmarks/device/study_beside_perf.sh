#!/usr/bin/env bash
# Issue 17's study (family_study.sh) beside issue 16's measurements (perf_track.sh) in one 2-GPU call, or the study
# alone on every GPU. The Genesis pack is unpacked ONCE here (two scripts unpacking at once would race).
#   PERF_STEPS="collect" (default): perf_track.sh on GPU 0, the study on GPU 1 (NGPU=1);
#   PERF_STEPS="":                  the study on all GPUs.
# The study's variables pass through (ENV_ID, FAMILY, TRAIN_ONLY, VARIANTS, WARMUP, ...); over two calls on one
# warm machine: TRAIN_ONLY=1 first, then the same command without it (family_study.sh says how that resumes).
#   run(kind="nvidia-h200-x2", carry=[".devpack/p1", ".whl", ".devpack/cache", ".gl"], timeout_s=600,
#       command="for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig; ENV_ID=MiniCheetahWalk-v0 TRAIN_ONLY=1 bash benchmarks/device/study_beside_perf.sh")
# Brings back family_study.sh's archives and perf.tar.xz (the perf JSON and logs).
# CPU dry run: DEVICE_DRY=1 PERF_STEPS="env:2" bash benchmarks/device/study_beside_perf.sh
set -u
T0=$(date +%s)
. benchmarks/device/setup.sh > /dev/null || exit 1
export T0 BUDGET_S=${BUDGET_S:-560}
PERF=${PERF_STEPS-collect}
if [ -n "$PERF" ]; then
  mkdir -p "$RUNS/perf_logs" "$RESULTS"
  touch "$RUNS/perf_logs/.call_start"
  ( BUDGET=$BUDGET_S PERF_GPU=0 PERF_STEPS=$PERF bash benchmarks/device/perf_track.sh ) > "$RUNS/perf_logs/track.log" 2>&1 &
  ( export CUDA_VISIBLE_DEVICES=1 NGPU=1; bash benchmarks/device/family_study.sh )
  wait
  echo "---- perf track (GPU 0)"; tail -n 30 "$RUNS/perf_logs/track.log"
  mapfile -t bench < <(find "$RESULTS" -maxdepth 1 -type f -newer "$RUNS/perf_logs/.call_start")
  ship perf "$RUNS/perf_logs" "${bench[@]}"
else
  bash benchmarks/device/family_study.sh
fi
echo "call took $(( $(date +%s) - T0 )) s"
