#!/usr/bin/env bash
# The GPU checks of issue 7 in as few device calls as fit a short lease (run from the repository root
# on a GPU host whose python3 has torch; wheels from perf/gpu/fetch_wheels.sh in .whl/):
#
#   bash perf/gpu/run_checks.sh tests    # install, versions, the gpu-marked tests, model cost on CUDA
#                                        # at batch 1/4/16/64, CUDA graphs off vs on at 4/16, and
#                                        # perf.bench_media where DALI is installed (~4 min)
#   bash perf/gpu/run_checks.sh sweep    # capacity sweep of inter1srv on the GPU (~5 min at the defaults)
#   bash perf/gpu/run_checks.sh naive    # the naive one-process reference on the same GPU (~2 min)
#
# Each stage installs the wheels first if they are not installed yet (a warm host keeps /tmp/site).
# Knobs (environment): LEVELS (sessions per level, default 64,128,200,256), NAIVE_LEVELS (16,32),
# SECONDS_PER_SESSION (20), BATCHES (model bench, 1,4,16,64), WORKERS (worker processes sharing the GPU, default: cores - 4),
# FRONTENDS (default 3), PY (python3). Results: $OUT if set (a lent device's return folder), else
# perf/results/gpu-<stage>.
set -uo pipefail
cd "$(dirname "$0")/../.."
stage="${1:-tests}"
PY="${PY:-python3}"
OUTDIR="${OUT:-perf/results/gpu-$stage}"
mkdir -p "$OUTDIR"
cores=$(nproc)
WORKERS="${WORKERS:-$(( cores > 6 ? cores - 4 : 2 ))}"
FRONTENDS="${FRONTENDS:-3}"
SECONDS_PER_SESSION="${SECONDS_PER_SESSION:-20}"
export PYTHONUNBUFFERED=1

install() {
    if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
        if ! PYTHONPATH=/tmp/site "$PY" -c "import av, websockets, orjson, pocketsphinx" 2>/dev/null; then
            "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
                --target /tmp/site .whl/*.whl || exit 1
        fi
        export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
    else
        export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
    fi
    "$PY" - <<'PY' || exit 1
import importlib
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
for name in ("numpy", "av", "websockets", "orjson", "pocketsphinx", "cv2", "h5py", "skimage", "uvloop", "psutil"):
    try:  # one missing package is reported, and the checks that do not need it still run
        mod = importlib.import_module(name)
        print(name, getattr(mod, "__version__", "?"))
    except Exception as exc:  # noqa: BLE001
        print("MISSING", name, repr(exc))
try:
    from workers.mtcnn import weights_dir
    from workers.expression import weights_path
    print("mtcnn weights", weights_dir(), "| expression weights", weights_path())
except Exception as exc:  # noqa: BLE001
    print("MISSING model weights", repr(exc))
PY
}

collect_sweep() {  # a sweep folder holds one JSON per level: pack them, keep the table and plot beside
    local dir="perf/results/gpu-sweep-$stage"
    [ -d "$dir" ] || return 0
    tar czf "$OUTDIR/$stage-sweep.tar.gz" -C "$(dirname "$dir")" "$(basename "$dir")"
    for f in table.txt sweep.png; do
        [ -f "$dir/$f" ] && cp "$dir/$f" "$OUTDIR/$stage-$f"
    done
    return 0
}

failed=0  # a check that fails does not stop the others; the stage's exit status says if any failed
check_done() { [ "$1" -eq 0 ] || { echo "FAILED: $2 (exit $1)" >&2; failed=1; }; }

case "$stage" in tests | sweep | naive) ;; *) echo "stage: tests, sweep or naive" >&2; exit 2 ;; esac
install
case "$stage" in
tests)
    { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; echo "cores: $cores"
      df -h /dev/shm; } 2>&1 | tee "$OUTDIR/host.txt"  # each session's ring is 32 MB of /dev/shm
    # the gpu-marked tests all live in tests/workers (other folders import packages a bare host lacks)
    # each step is time-boxed, so a hang in one leaves the others their share of a short lease
    timeout 170 "$PY" -m pytest -q -m gpu -p no:cacheprovider tests/workers 2>&1 | tee "$OUTDIR/gpu-tests.txt"
    check_done $? "gpu tests"
    timeout 170 "$PY" -m perf.bench_model --device auto --cuda-graphs 4,16 --batches "${BATCHES:-1,4,16,64}" --json "$OUTDIR/bench-model.json" 2>&1 \
        | tee "$OUTDIR/bench-model.txt"
    check_done $? "model bench"
    if "$PY" -c "import nvidia.dali" 2>/dev/null; then  # only where DALI is installed (its wheel cannot travel)
        timeout 90 "$PY" -m perf.bench_media --json "$OUTDIR/bench-media.json" 2>&1 | tee "$OUTDIR/bench-media.txt"
        check_done $? "media bench"
    else
        echo "NVIDIA DALI is not installed here: perf.bench_media skipped" | tee "$OUTDIR/bench-media.txt"
    fi
    ;;
sweep)
    LEVELS="${LEVELS:-64,128,200,256}"
    # the floors (CPU decode, CPU model) are skipped: the tests stage measures the model on the GPU;
    # the load generator caps sessions per frontend at 64 unless told otherwise
    rm -rf "perf/results/gpu-sweep-$stage"
    "$PY" -m perf.sweep --sessions "$LEVELS" --skip-naive --skip-floors --seconds "$SECONDS_PER_SESSION" \
        --workers "$WORKERS" --env "INTER1SRV_FRONTENDS=$FRONTENDS" --env "INTER1SRV_MAX_SESSIONS=512" \
        --label "gpu-${WORKERS}w" --out "perf/results/gpu-sweep-$stage" 2>&1 | tee "$OUTDIR/sweep.txt"
    check_done $? "sweep"
    collect_sweep
    ;;
naive)
    NAIVE_LEVELS="${NAIVE_LEVELS:-16,32}"
    rm -rf "perf/results/gpu-sweep-$stage"
    "$PY" -m perf.sweep --sessions "" --naive-sessions "$NAIVE_LEVELS" --seconds "$SECONDS_PER_SESSION" \
        --workers 1 --skip-floors --label "gpu-1w" --out "perf/results/gpu-sweep-$stage" 2>&1 | tee "$OUTDIR/naive.txt"
    check_done $? "naive sweep"
    collect_sweep
    ;;
esac
exit "$failed"
