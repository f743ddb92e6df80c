#!/usr/bin/env bash
# `go2bench pipeline --preset gpu` in one device call (resumable across calls). Run from the repo root:
#   bash benchmarks/device/pipeline_gpu.sh GPUS SECONDS [--set FIELD=VALUE ...]
# carry: [".devpack/p1", ".gl", ".whl", ".devpack/cache"] (+ "runs/pipeline_gpu" to resume a run).
# Brings back: run.tar.xz (pipeline.json, results, leaderboard, checkpoint, metrics, dataset JSONs and
# plots, logs), pipeline.log, and the kernel caches.
set -u
. benchmarks/device/setup.sh || exit 1
GPUS=${1:-1}; SECS=${2:-480}; shift 2 || true
RUN=runs/pipeline_gpu
nproc; free -g | head -2; python3 -c "import torch; print(torch.__version__, torch.cuda.device_count())"
timeout "$SECS" python3 -m go2bench.cli pipeline --preset gpu --out $RUN --set gpus=$GPUS "$@" > "$OUT/pipeline.log" 2>&1
echo "pipeline exit $?"
grep -a "pipeline \|steps/s\|wrote\|Error\|error" "$OUT/pipeline.log" | tail -40
tail -c 3000 "$OUT/pipeline.log"
cd $RUN && tar -cJf "$OUT/run.tar.xz" --ignore-failed-read pipeline.json dataset_config*.yaml results leaderboard \
  runs/vintix/final.pt runs/vintix/config.json runs/vintix/metrics.jsonl runs/vintix/latest.json runs/vintix/done \
  *.log $(ls data/*/*/*.json data/*/*/*.png 2>/dev/null) 2>/dev/null; cd - > /dev/null
ls -la "$OUT"
save_caches
