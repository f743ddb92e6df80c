#!/usr/bin/env bash
# Fresh-process Go2 builds (4096 envs) on one GPU under the kernel-cache hypotheses (issue 16, "Fresh GPU machine").
# What a cached build still pays: quadrants' offline cache (~/.cache/quadrants) holds each kernel's LLVM IR and its
# PTX, but turning PTX into GPU code (SASS) is the CUDA driver's JIT at every module load, cached only in
# ~/.nv/ComputeCache, which was not carried before (benchmarks/RESULTS.md, "Scene build time"). Three processes:
#   1  Go2Walk-v0:4096            as carried (quadrants + genesis caches);
#   2  Go2Walk-v0:4096            all caches as process 1 left them: what carrying all three gives a fresh machine;
#   3  Go2Walk-v0:4096@cold-cuda  the same quadrants cache, an empty CUDA compute cache: 3 minus 2 is what the
#                                 driver's PTX->SASS compile costs without its cache (skipped if the budget is spent).
# Each process is bounded by CASE_TIMEOUT (150 s) and all three by BUDGET_S (240 s); a killed process writes no
# quadrants cache, so the next one pays again (the table says which were killed). Then save_caches brings back
# qcache/gcache.tar.xz (sizes printed) for .devpack/cache/. Measured 2026-11-30: 3 and 2 build alike (34.7 vs
# 34.2 s), so the CUDA cache is not carried.
#   run(kind="nvidia-h200", carry=[".devpack/p1", ".gl", ".whl", ".devpack/cache"], timeout_s=420,
#       command="bash benchmarks/device/build_cache_probe.sh")
# Writes $RESULTS/build_cache_probe_gpu.json (benchmarks/results), shipped as build_cache_probe.tar.xz.
set -u
T0=$(date +%s)
. benchmarks/device/setup.sh > /tmp/setup.log 2>&1 || { cat /tmp/setup.log; exit 1; }
BUDGET=${BUDGET_S:-240}
N=${NUM_ENVS:-4096}
tail -n 1 /tmp/setup.log
echo "setup took $(( $(date +%s) - T0 )) s; CUDA_CACHE_MAXSIZE=$CUDA_CACHE_MAXSIZE; caches as carried:"
du -sh ~/.cache/quadrants ~/.cache/quadrants/qdcache/* ~/.cache/genesis ~/.nv/ComputeCache 2>/dev/null
mkdir -p "$RESULTS"
python3 benchmarks/build_probe.py --backend gpu --timeout "${CASE_TIMEOUT:-150}" --budget "$BUDGET" \
  --case "Go2Walk-v0:$N" --case "Go2Walk-v0:$N" --case "Go2Walk-v0:$N@cold-cuda" \
  --out "$RESULTS/build_cache_probe_gpu.json"
echo "probe exit $? at $(( $(date +%s) - T0 )) s"
ship build_cache_probe "$RESULTS/build_cache_probe_gpu.json"
echo "caches after:"
du -sh ~/.cache/quadrants ~/.cache/quadrants/qdcache/* ~/.cache/genesis ~/.nv/ComputeCache 2>/dev/null
save_caches
echo "done at $(( $(date +%s) - T0 )) s"
