#!/usr/bin/env bash
# One 2-GPU device call (issues 16 and 17), everything bounded from inside, ONE Genesis process per GPU at a time
# (processes sharing a GPU time-slice it: five 128-env collections on one H200 ran at 9-10k env-steps/s each):
#   GPU 0: issue 16's measurements, benchmarks/device/perf_track.sh with PERF_STEPS (default "collect env:16384");
#   GPU 1: the pipeline's family stage of FAMILY (velocity) on FAMILY_ENV (Go2Walk-v0) at GPU scale (histories on
#          the train thetas, Vintix and vintix-episodic, the family protocol on the test thetas, the leaderboard).
# Brings back results.tar.xz (benchmark JSON, logs, the family run without its datasets, its checkpoints) and,
# with SAVE_CACHES=1, the caches.
#   run(kind="nvidia-h200-x2", carry=[".devpack/p1", ".whl", ".devpack/cache", ".gl"], timeout_s=600,
#       command="for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig; FAMILY_ENV=MiniCheetahWalk-v0 bash benchmarks/device/perf_and_family.sh")
set -u
T0=$(date +%s)
BUDGET=${BUDGET_S:-570}
. benchmarks/device/setup.sh > /dev/null || exit 1
mkdir -p "$OUT/res" runs benchmarks/results
touch /tmp/call_start
left() { echo $((T0 + BUDGET - $(date +%s))); }

( export T0 BUDGET DEVICE_READY=1; PERF_GPU=0 PERF_STEPS=${PERF_STEPS:-"collect env:16384"} bash benchmarks/device/perf_track.sh
  mv "$OUT/perf" "$OUT/res/perf"
) > "$OUT/res/gpu0.log" 2>&1 &

(
  export CUDA_VISIBLE_DEVICES=1
  timeout -k 5 $(( $(left) - 30 )) python3 -m go2bench.cli pipeline --preset gpu --stages family --out runs/fam_gpu --set gpus=1 --set eval.jobs=1 \
    --set "family.families=[${FAMILY:-velocity}]" --set "family.envs=[${FAMILY_ENV:-Go2Walk-v0}]" \
    --set 'family.agents=[random, teacher-blind, teacher-privileged, vintix, vintix-episodic]' \
    --set family.trials=${TRIALS:-null} --set 'family.seeds=[0, 1]' --set family_collect.max_episode_steps=500 \
    --set family_train.max_steps=${TRAIN_STEPS:-3000} ${FAMILY_SET:-}
  echo "family pipeline exit $? at $(( $(date +%s) - T0 )) s"
) > "$OUT/res/family_gpu.log" 2>&1 &
wait
echo "all done at $(( $(date +%s) - T0 )) s"
tail -n 25 "$OUT/res/gpu0.log"; tail -n 40 "$OUT/res/family_gpu.log"
# the family run without its datasets and checkpoints (small files only)
(cd runs && find fam_gpu -type f \( -name '*.json' -o -name '*.md' -o -name '*.csv' -o -name '*.png' -o -name '*.log' \
   -o -name '*.yaml' -o -name '*.jsonl' \) -size -4M | tar -cJf "$OUT/res/fam_gpu.tar.xz" -T -)
(cd runs && find fam_gpu -name final.pt | tar -cf "$OUT/res/fam_gpu_models.tar" -T -)
find benchmarks/results -type f -newer /tmp/call_start | tar -cf "$OUT/res/bench_results.tar" -T -
(cd "$OUT" && tar -cJf results.tar.xz res && rm -rf res)
[ "${SAVE_CACHES:-0}" = 1 ] && save_caches
echo "call took $(( $(date +%s) - T0 )) s"
