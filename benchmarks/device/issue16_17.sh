#!/usr/bin/env bash
# One 2-GPU device call, two tracks side by side, everything bounded from inside:
#   GPU PERF_GPU (0): issue 16's measurements (benchmarks/device/perf_track.sh, PERF_STEPS);
#   GPU ROBOT_GPUS (1): issue 17's leave-one-robot-out run (benchmarks/device/robots_split.sh), and beside its
#   start the model-only measurements (PERF_STEPS_B, default the Vintix decode benchmark).
# The robots track's scene builds share the host's CPU cores with the perf track: its ratios are measured within
# one run, but absolute rates (e.g. the teacher's time to walk) are those of a busy host, said in RESULTS.md.
#   run(kind="nvidia-h200-x2", carry=[".devpack/p1", ".whl", ".devpack/cache", ".gl"], timeout_s=600,
#       command="for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig; bash benchmarks/device/issue16_17.sh")
# Brings back (ship, setup.sh): i1617_logs.tar.xz (robots.log, perf.log, perf_b.log and the perf steps' logs),
# perf.tar.xz (benchmark JSON), rs_results.tar.xz, rs_models.tar.xz and, with SAVE_CACHES=1, the kernel caches.
# robots_split.sh stops at its first incomplete phase and resumes in a chained call (see there).
# CPU dry run (docs/device.md): DEVICE_DRY=1 bash benchmarks/device/issue16_17.sh
set -u
export T0=$(date +%s)
. benchmarks/device/setup.sh > /dev/null || exit 1
export BUDGET_S=${BUDGET_S:-560}
export BUDGET=$BUDGET_S
LOGS=$RUNS/i1617_logs
mkdir -p "$RESULTS" "$LOGS"
touch "$LOGS/.call_start"
# a CPU dry run measures nothing on 4096 envs: one tiny env step instead (the CUDA-only steps skip themselves)
[ "${DEVICE_DRY:-0}" = 1 ] && : "${PERF_STEPS:=teacher:Go2Walk-v0 env:2}" && export ENV_ARGS=${ENV_ARGS:---steps 50 --reps 1 --warmup 5}
( ROBOT_GPUS=${ROBOT_GPUS:-1} bash benchmarks/device/robots_split.sh ) > "$LOGS/robots.log" 2>&1 &
( PERF_GPU=${PERF_GPU:-0} PERF_LOGS=$LOGS/perf PERF_STEPS=${PERF_STEPS:-"teacher:Go2Walk-v0 env:4096,16384"} \
  bash benchmarks/device/perf_track.sh ) > "$LOGS/perf.log" 2>&1 &
# model-only steps beside the robots track's start (its first minutes are CPU-bound scene builds)
( PERF_GPU=${ROBOT_GPUS:-1} PERF_LOGS=$LOGS/perf_b PERF_STEPS=${PERF_STEPS_B:-eval} bash benchmarks/device/perf_track.sh ) \
  > "$LOGS/perf_b.log" 2>&1 &
wait
echo "tracks done at $(( $(date +%s) - T0 )) s"
tail -n 30 "$LOGS/robots.log"; grep -a "^\[perf" "$LOGS/perf.log" "$LOGS/perf_b.log"
mapfile -t bench < <(find "$RESULTS" -type f -newer "$LOGS/.call_start")
ship perf "${bench[@]}"
ship i1617_logs "$LOGS"
[ "${SAVE_CACHES:-0}" = 1 ] && save_caches
ls -la "$OUT"; echo "call took $(( $(date +%s) - T0 )) s"
