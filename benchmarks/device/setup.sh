# Source on the GPU device machine from the repo root: unpacks the carried Genesis pack, the wheels
# and the kernel caches (see ../shared/device/README.md), and puts go2bench on PYTHONPATH.
# carry: [".devpack/p1", ".gl", ".whl", ".devpack/cache"]
python3 .devpack/p1/unpack.py > /tmp/unpack.log 2>&1 || { cat /tmp/unpack.log; return 1; }
. /tmp/genesis-env.sh
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/extra .whl/*.whl || return 1
export PYTHONPATH="$PWD:/tmp/extra:$PYTHONPATH" PYTHONUNBUFFERED=1
# The caches: quadrants' kernels (LLVM IR and PTX) and Genesis' SDF grids. The CUDA driver's PTX->SASS cache
# (~/.nv/ComputeCache) is not carried: an empty one cost nothing measurable (34.7 vs 34.2 s, RESULTS.md).
mkdir -p ~/.cache && for f in .devpack/cache/*.tar.xz; do [ -f "$f" ] && tar -xJf "$f" -C ~; done
# The driver's cache holds 256 MiB by default and evicts beyond it; 4 GiB is its maximum (kept within a call).
export CUDA_CACHE_MAXSIZE=${CUDA_CACHE_MAXSIZE:-4294967296}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
save_caches() {  # bring the compiled kernels back for the next fresh machine; prints the sizes (the carry is 64 MiB)
  # fast on the device; recompress here with xz -9e before carrying (the kernel cache: 11 MB at -6, 3 MB at -9e)
  (cd ~ && tar -cf - .cache/quadrants | xz -6 -T16 > "$OUT/qcache.tar.xz"; tar -cf - .cache/genesis | xz -6 -T16 > "$OUT/gcache.tar.xz")
  du -sh ~/.cache/quadrants ~/.cache/genesis ~/.nv/ComputeCache 2>/dev/null
  ls -l "$OUT"/*cache.tar.xz
}
# One default-task teacher in the background on GPU $2 (family_teachers.sh DEFAULT_ENVS, robot_teachers.sh):
# launch_default_teacher ENV GPU NUM_ENVS; reads MIN, STOP_AT, HARD_END, T0 and OUT; log in $OUT/teach_ENV.log,
# weights exported to $OUT/zoo/ENV/.
launch_default_teacher() {
  local env=$1 gpu=$2 num_envs=$3
  (
    CUDA_VISIBLE_DEVICES=$gpu OMP_NUM_THREADS=2 timeout -k 5 $((HARD_END - $(date +%s))) python3 -m go2bench.cli teach \
      --env "$env" --num-envs "$num_envs" --total-steps 2000000000 --device cuda --backend gpu --out "runs/teach_$env" \
      --max-minutes "$MIN" --stop-at "$STOP_AT" --checkpoint-every 2000000000 --eval-episodes 256 \
      --log-every 30 --quiet --no-progress-bar
    echo "teach exit code $? at $(( $(date +%s) - T0 )) s"
    python3 -c "from go2bench.agents.teacher import export_teacher; print('exported', export_teacher('runs/teach_$env', zoo_root='$OUT/zoo'))"
  ) > "$OUT/teach_$env.log" 2>&1 &
}
