#!/usr/bin/env bash
# Installs everything Mask2Flow-TSE uses on a fresh Debian/Ubuntu machine.
# System: speech synthesis + sox for the offline demo corpus. Python: see requirements*.txt.
set -euo pipefail
cd "$(dirname "$0")"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
    flite festival festvox-kdlpc16k sox libsndfile1
PIP="python3 -m pip install -q --disable-pip-version-check"
$PIP torch==2.13.0                  # first, pinned: the CPU wheel (a GPU build works too)
$PIP -r requirements.txt
$PIP -r requirements-eval.txt       # PESQ, ESTOI, speaker similarity for evaluation
$PIP -r requirements-docs.txt       # matplotlib, for the figures of docs/
python3 -c "import torch, mask2flow; print('installed: torch', torch.__version__)"
