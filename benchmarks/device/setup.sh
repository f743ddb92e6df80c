# Source on the GPU device machine from the repo root: unpacks the carried Genesis pack, the wheels
# and the kernel caches (see ../shared/device/README.md), and puts go2bench on PYTHONPATH.
# carry: [".devpack/p1", ".gl", ".whl", ".devpack/cache"]
# Sets BACKEND/DEVICE (gpu/cuda), RUNS (runs) and RESULTS (benchmarks/results) for the scripts, and defines
# ship (every script returns its files through it), gpu_count, save_caches and launch_default_teacher.
#
# DEVICE_DRY=1: a CPU dry run of a device script on this machine at tiny scale, to find script bugs before
# spending device time (docs/device.md): nothing is unpacked, OUT is a temp folder unless set, BACKEND=cpu
# DEVICE=cpu, RUNS and RESULTS are under DRY_DIR (a temp folder: the repo's results are not touched), gpu_count
# says DRY_GPUS (2, so round robins over GPUs run), and the sizes the scripts read default to tiny values.
# A script started by one that sourced this file (DEVICE_READY=1 is exported) sources it for its functions only.
#
# The device returns AT MOST 8 FILES from $OUT, EACH AT MOST 16 MB; a bigger file is dropped without a word.
# ship NAME [-C DIR] PATH...  packs PATHs into $OUT/NAME.tar.xz; an archive over SHIP_PART_BYTES (15,000,000)
# is split into $OUT/NAME.tar.xz.part-00, -01, ... of at most that size. Reassemble here:
#   cat NAME.tar.xz.part-* | tar -xJ          (a single archive: tar -xJf NAME.tar.xz)
# Ship results, logs and checkpoints separately, so that a big checkpoint cannot take the results with it.
export PYTHONUNBUFFERED=1
if [ "${DEVICE_DRY:-0}" = 1 ]; then
  export DRY_DIR=${DRY_DIR:-$(mktemp -d /tmp/device_dry.XXXXXX)}
  export OUT=${OUT:-$DRY_DIR/out} RUNS=${RUNS:-$DRY_DIR/runs} RESULTS=${RESULTS:-$DRY_DIR/results}
  mkdir -p "$OUT" "$RUNS" "$RESULTS"
  export BACKEND=cpu DEVICE=cpu PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  # tiny sizes through the variables the scripts read (each may still be set by the caller)
  export HIST=${HIST:-2} HISTORIES=${HISTORIES:-2} STEPS_PER_HISTORY=${STEPS_PER_HISTORY:-300} \
    EP_STEPS=${EP_STEPS:-50} GROUP_SIZE=${GROUP_SIZE:-100} TRAIN_STEPS=${TRAIN_STEPS:-20} MODEL=${MODEL:-tiny} \
    CONTEXT=${CONTEXT:-100} SPARSITY=${SPARSITY:-25} WORKERS=${WORKERS:-0} TRIALS=${TRIALS:-2} SEEDS=${SEEDS:-0} \
    EPISODES=${EPISODES:-2} NUM_ENVS=${NUM_ENVS:-2} EVAL_ENVS=${EVAL_ENVS:-2} EVAL_EP_STEPS=${EVAL_EP_STEPS:-50} JOBS=${JOBS:-1} \
    BUDGET_S=${BUDGET_S:-1500} TEACH_MIN=${TEACH_MIN:-0.3}
  echo "DEVICE_DRY=1: CPU dry run at tiny scale; OUT=$OUT RUNS=$RUNS RESULTS=$RESULTS"
elif [ -n "${DEVICE_READY:-}" ]; then
  :  # a script started by one that sourced this file: the pack, PYTHONPATH and the variables are set up
else
  python3 .devpack/p1/unpack.py > /tmp/unpack.log 2>&1 || { cat /tmp/unpack.log; return 1; }
  . /tmp/genesis-env.sh
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/extra .whl/*.whl || return 1
  export PYTHONPATH="$PWD:/tmp/extra${PYTHONPATH:+:$PYTHONPATH}"
  export BACKEND=${BACKEND:-gpu} DEVICE=${DEVICE:-cuda} RUNS=${RUNS:-runs} RESULTS=${RESULTS:-benchmarks/results}
  # The caches: quadrants' kernels (LLVM IR and PTX) and Genesis' SDF grids. The CUDA driver's PTX->SASS cache
  # (~/.nv/ComputeCache) is not carried: an empty one cost nothing measurable (34.7 vs 34.2 s, RESULTS.md).
  mkdir -p ~/.cache && for f in .devpack/cache/*.tar.xz; do [ -f "$f" ] && tar -xJf "$f" -C ~; done
  # The driver's cache holds 256 MiB by default and evicts beyond it; 4 GiB is its maximum (kept within a call).
  export CUDA_CACHE_MAXSIZE=${CUDA_CACHE_MAXSIZE:-4294967296}
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
fi
export DEVICE_READY=1  # scripts started from here source this file for its functions only
mkdir -p "$OUT"

gpu_count() {  # GPUs of this machine (at least 1); a dry run pretends DRY_GPUS (2)
  if [ "${DEVICE_DRY:-0}" = 1 ]; then echo "${DRY_GPUS:-2}"; return; fi
  local n; n=$(nvidia-smi -L 2>/dev/null | wc -l); [ "$n" -ge 1 ] && echo "$n" || echo 1
}

out_check() {  # LOUD when $OUT holds more than the 8 files a call brings back, or a file over 16 MB
  local n big
  n=$(find "$OUT" -type f | wc -l)
  big=$(find "$OUT" -type f -size +15999999c)
  if [ "$n" -gt 8 ]; then
    echo "!!!!!!!! WARNING: \$OUT holds $n files; a device call brings back AT MOST 8: some will be LOST !!!!!!!!"
    (cd "$OUT" && find . -type f | sort | sed 's/^/!!!!!!!!   /')
  fi
  [ -n "$big" ] && echo "!!!!!!!! WARNING: over 16 MB, will be DROPPED: $big !!!!!!!!"
  return 0
}

ship() {  # ship [--rm] NAME [-C DIR] PATH...: see the top of this file; --rm deletes the shipped PATHs afterwards
  local rm=0; [ "${1:-}" = --rm ] && { rm=1; shift; }
  local name=$1; shift
  local dir=. ; [ "${1:-}" = -C ] && { dir=$2; shift 2; }
  local arc="$OUT/$name.tar.xz" limit=${SHIP_PART_BYTES:-15000000} p q size
  local paths=()
  for p in "$@"; do
    case $p in /*) q=$p ;; *) q=$dir/$p ;; esac
    if [ -e "$q" ]; then paths+=("$p"); else echo "ship $name: MISSING $q (not shipped)"; fi
  done
  rm -f "$arc" "$arc".part-*
  if [ ${#paths[@]} -eq 0 ]; then echo "!!!!!!!! ship $name: NOTHING TO SHIP !!!!!!!!"; out_check; return 1; fi
  tar -C "$dir" -cf - "${paths[@]}" 2> >(grep -v "Removing leading" >&2) | xz ${SHIP_XZ:--6 -T0} > "$arc"
  local st=("${PIPESTATUS[@]}")
  if [ "${st[0]}" != 0 ] || [ "${st[1]}" != 0 ]; then
    echo "!!!!!!!! ship $name: FAILED to pack ${paths[*]} !!!!!!!!"; rm -f "$arc"; out_check; return 1
  fi
  size=$(stat -c %s "$arc")
  if [ "$size" -gt "$limit" ]; then
    split -b "$limit" -d "$arc" "$arc.part-" && rm -f "$arc"
    echo "==> shipped $name: ${#paths[@]} path(s), $size bytes, SPLIT into parts (reassemble: cat $name.tar.xz.part-* | tar -xJ):"
    (cd "$OUT" && ls -l "$name".tar.xz.part-* | awk '{print "==>   " $NF ": " $5 " bytes"}')
  else
    echo "==> shipped $name.tar.xz: ${#paths[@]} path(s), $size bytes"
  fi
  if [ "$rm" = 1 ]; then (cd "$dir" && rm -rf "${paths[@]}"); fi
  out_check
}

save_caches() {  # bring the compiled kernels back for the next fresh machine; prints the sizes (the carry is 64 MiB)
  # fast on the device; recompress here with xz -9e before carrying (the kernel cache: 11 MB at -6, 3 MB at -9e)
  if [ "${DEVICE_DRY:-0}" = 1 ]; then echo "dry run: kernel caches not saved"; return 0; fi
  SHIP_XZ="-6 -T16" ship qcache -C ~ .cache/quadrants
  SHIP_XZ="-6 -T16" ship gcache -C ~ .cache/genesis
  du -sh ~/.cache/quadrants ~/.cache/genesis ~/.nv/ComputeCache 2>/dev/null
}

# One default-task teacher in the background on GPU $2 (family_teachers.sh DEFAULT_ENVS, robot_teachers.sh):
# launch_default_teacher ENV GPU NUM_ENVS LOG_DIR; reads MIN, STOP_AT, HARD_END and T0; log in LOG_DIR/teach_ENV.log,
# weights exported to LOG_DIR/zoo/ENV/.
launch_default_teacher() {
  local env=$1 gpu=$2 num_envs=$3 logs=$4
  (
    CUDA_VISIBLE_DEVICES=$gpu OMP_NUM_THREADS=2 timeout -k 5 $((HARD_END - $(date +%s))) python3 -m go2bench.cli teach \
      --env "$env" --num-envs "$num_envs" --total-steps 2000000000 --device "$DEVICE" --backend "$BACKEND" \
      --out "$RUNS/teach_$env" --max-minutes "$MIN" --stop-at "$STOP_AT" --checkpoint-every 2000000000 \
      --eval-episodes "${TEACH_EVAL_EPISODES:-256}" --log-every 30 --quiet --no-progress-bar
    echo "teach exit code $? at $(( $(date +%s) - T0 )) s"
    python3 -c "from go2bench.agents.teacher import export_teacher; print('exported', export_teacher('$RUNS/teach_$env', zoo_root='$logs/zoo'))"
  ) > "$logs/teach_$env.log" 2>&1 &
}
