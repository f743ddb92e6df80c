#!/usr/bin/env bash
# One 2-GPU device call (issues 16 and 17), everything bounded from inside so the kernel caches are
# written by clean exits:
#   GPU 0: PPO teachers with host vs device rollouts side by side (benchmarks/teacher_rollout_modes.py),
#          then the env throughput table (benchmarks/env_throughput.py: raw loop, numpy and torch vector
#          envs at 4096 and 16384 envs) and, if time is left, a fresh-process build (benchmarks/build_probe.py);
#   GPU 1: the pipeline's family stage on Go2 `velocity` at GPU scale (histories on the train
#          thetas, Vintix and vintix-episodic, the family protocol on the test thetas, the leaderboard).
# Brings back results.tar.xz (benchmark JSON, logs, the family run without its datasets) and the caches.
#   run(kind="nvidia-h200-x2", carry=[".devpack/p1", ".whl", ".devpack/cache", ".gl"], timeout_s=600,
#       command="for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig; bash benchmarks/device/perf_and_family.sh")
set -u
T0=$(date +%s)
BUDGET=${BUDGET_S:-570}
. benchmarks/device/setup.sh > /dev/null || exit 1
mkdir -p "$OUT/res" runs benchmarks/results
touch /tmp/call_start
left() { echo $((T0 + BUDGET - $(date +%s))); }

(
  export CUDA_VISIBLE_DEVICES=0
  timeout -k 5 $(( $(left) - 230 )) python3 benchmarks/teacher_rollout_modes.py --backend gpu --device cuda \
    --num-envs 4096 --train-seconds ${PPO_SECONDS:-100}
  echo "rollout modes exit $? at $(( $(date +%s) - T0 )) s"
  timeout -k 5 $(( $(left) - 60 )) python3 benchmarks/env_throughput.py --backend gpu ${ENV_ARGS:---num-envs 4096 16384}
  echo "env throughput exit $? at $(( $(date +%s) - T0 )) s"
  if [ "$(left)" -gt 100 ]; then
    timeout -k 5 $(( $(left) - 20 )) python3 benchmarks/build_probe.py --backend gpu --case Go2Walk-v0:4096
    echo "build probe exit $? at $(( $(date +%s) - T0 )) s"
  fi
) > "$OUT/res/gpu0.log" 2>&1 &

(
  export CUDA_VISIBLE_DEVICES=1
  timeout -k 5 $(( $(left) - 30 )) python3 -m go2bench.cli pipeline --preset gpu --stages family --out runs/fam_gpu --set gpus=1 --set eval.jobs=1 \
    --set 'family.families=[velocity]' --set 'family.envs=[Go2Walk-v0]' \
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
save_caches
echo "call took $(( $(date +%s) - T0 )) s"
