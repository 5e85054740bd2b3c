#!/usr/bin/env bash
# Installs Mask2Flow-TSE: the Python packages into .venv/, an environment of this checkout made with
# the python3 on PATH (the system's site-packages are never touched: a Debian/Ubuntu python3 refuses
# pip outside a venv, PEP 668). Only pip packages: soundfile's wheel brings libsndfile, which reads the
# MP3 and Opus files of speech/. Running it again changes nothing that is already installed, and takes seconds.
#
#   bash install.sh                                                        # torch 2.13.0 as pip finds it
#   TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu bash install.sh   # the small CPU-only torch build
#
# On PyPI, torch==2.13.0 for Linux x86 is the multi-GB CUDA build. To switch builds, rm -r .venv first.
set -euo pipefail
cd "$(dirname "$0")"
command -v python3 >/dev/null || { echo "error: no python3 on PATH; install Python 3 first" >&2; exit 1; }
venv_works() { [ -x .venv/bin/python ] && .venv/bin/python -m pip --version >/dev/null 2>&1; }

# Debian ships venv's pip bootstrap (ensurepip) apart from python3, in python3.X-venv: the one system
# package this may need, installed with apt (root or sudo) when it is missing.
VENV_PKG=$(python3 -c 'import sys; print("python%d.%d-venv" % sys.version_info[:2])')
if ! venv_works && ! python3 -c "import ensurepip" 2>/dev/null && command -v apt-get >/dev/null; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$VENV_PKG"
fi

# The environment: kept when it works; made again (--clear) when it is missing or broken.
if ! venv_works; then
    python3 -c "import ensurepip" 2>/dev/null || {
        echo "error: $(command -v python3) cannot make a virtual environment: install $VENV_PKG (Debian/Ubuntu)" >&2
        exit 1; }
    python3 -m venv --clear .venv
fi
PIP=".venv/bin/python -m pip install -q --disable-pip-version-check"
$PIP ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} torch==2.13.0  # first and pinned: the rest builds on it
$PIP -r requirements.txt -r requirements-eval.txt -r requirements-docs.txt

.venv/bin/python - <<'EOF2'
import torch, mask2flow
build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only"
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none visible"
print(f"installed into .venv: torch {torch.__version__} ({build} build); GPU: {gpu}")
EOF2
