# Source on the GPU device machine from the repo root: unpacks the carried Genesis pack, the wheels
# and the kernel caches (see ../shared/device/README.md), and puts go2bench on PYTHONPATH.
# carry: [".devpack/p1", ".gl", ".whl", ".devpack/cache"]
python3 .devpack/p1/unpack.py > /tmp/unpack.log 2>&1 || { cat /tmp/unpack.log; return 1; }
. /tmp/genesis-env.sh
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/extra .whl/*.whl || return 1
export PYTHONPATH="$PWD:/tmp/extra:$PYTHONPATH" PYTHONUNBUFFERED=1
mkdir -p ~/.cache && for f in .devpack/cache/*.tar.xz; do [ -f "$f" ] && tar -xJf "$f" -C ~; done
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
save_caches() {  # bring the compiled kernels back for the next fresh machine
  (cd ~ && tar -cf - .cache/quadrants | xz -6 -T16 > "$OUT/qcache.tar.xz"; tar -cf - .cache/genesis | xz -6 -T16 > "$OUT/gcache.tar.xz")
}
