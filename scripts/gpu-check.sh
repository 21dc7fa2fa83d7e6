#!/bin/sh
# The GPU check on a machine with torch but without a registry (what `make gpu-check` runs).
#   sh scripts/gpu-check.sh            # full check on the GPU
#   sh scripts/gpu-check.sh --dry-run  # CPU dry run, tiny sizes
#   sh scripts/gpu-check.sh --only cuda-tests,multirun   # further arguments go to gpu_check
# Needs the wheels of `make gpu-wheels` in .gpu-wheels/. GPU_PY (default python3) is the
# machine's Python with torch. Installs the wheels offline into .gpu-venv (--system-site-packages,
# so the machine's torch is used); if that venv cannot see torch or has no pip, unpacks them into
# .gpu-site/ and puts it on PYTHONPATH. Nothing touches the network.
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
GPU_PY=${GPU_PY:-python3}
WHEELS=.gpu-wheels
VENV=.gpu-venv
PKGS="hydra-core omegaconf antlr4-python3-runtime submitit cloudpickle hydra-submitit-launcher pytest pluggy iniconfig packaging pygments typing_extensions exceptiongroup tomli"
ARGS=""
if [ "${1:-}" = "--dry-run" ]; then ARGS="--dry-run --device cpu"; shift; fi

if "$GPU_PY" -c "import hydra, omegaconf, submitit, pytest, hydra_plugins.hydra_submitit_launcher" 2>/dev/null; then
    echo "gpu-check: $GPU_PY has everything"
    RUN_PY=$GPU_PY
else
    if [ ! -d "$WHEELS" ]; then
        echo "error: $WHEELS/ is missing: run make gpu-wheels where a registry is reachable, then carry it"
        exit 2
    fi
    if { [ -x "$VENV/bin/python" ] || "$GPU_PY" -m venv --system-site-packages "$VENV"; } 2>/dev/null \
        && "$VENV/bin/python" -c "import torch" 2>/dev/null \
        && "$VENV/bin/python" -m pip install -q --no-index --find-links "$WHEELS" $PKGS; then
        echo "gpu-check: wheels installed offline into $VENV"
        RUN_PY=$VENV/bin/python
    else
        echo "gpu-check: no usable venv/pip here: unpacking the wheels into .gpu-site/"
        "$GPU_PY" -c "import glob, zipfile; [zipfile.ZipFile(w).extractall('.gpu-site') for w in glob.glob('$WHEELS/*.whl')]" || exit 2
        RUN_PY=$GPU_PY
        PYTHONPATH="$ROOT/.gpu-site${PYTHONPATH:+:$PYTHONPATH}"
    fi
fi
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
export WANDB_MODE=disabled
exec "$RUN_PY" -m certssb.tools.gpu_check $ARGS "$@"
