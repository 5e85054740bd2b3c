#!/usr/bin/env bash
# Installs Mask2Flow-TSE: the Python packages into .venv/, an environment of this checkout made with
# the python3 on PATH (the system's site-packages are never touched: a Debian/Ubuntu python3 refuses
# pip outside a venv, PEP 668), and with apt the Debian packages that `data.py demo` needs.
# Running it again changes nothing that is already installed, and takes seconds.
#
#   bash install.sh                                                        # torch 2.13.0 as pip finds it
#   TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu bash install.sh   # the small CPU-only torch build
#
# On PyPI, torch==2.13.0 for Linux x86 is the multi-GB CUDA build. To switch builds, rm -r .venv first.
set -euo pipefail
cd "$(dirname "$0")"
# speech synthesis (15 voices, Debian main) and sox for the demo corpus: corpus.py's APT_PACKAGES, and libsndfile
APT_PACKAGES="flite festival sox festvox-kdlpc16k festvox-czech-dita festvox-czech-krb festvox-czech-machac
  festvox-czech-ph festvox-suopuhe-lj festvox-suopuhe-mv festvox-italp16k festvox-itapc16k festvox-ru
  festvox-ca-ona-hts libsndfile1"
BREW_PACKAGES="flite sox"  # Homebrew has no festival nor its voices

command -v python3 >/dev/null || { echo "error: no python3 on PATH; install Python 3 first" >&2; exit 1; }
# The Debian packages not installed (dpkg still knows a removed one: read its status); all of them without dpkg.
missing() {
    for p in "$@"; do [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || echo "$p"; done
}
venv_works() { [ -x .venv/bin/python ] && .venv/bin/python -m pip --version >/dev/null 2>&1; }

# System packages, only those missing: apt needs root or sudo, and a second run needs neither.
# Debian ships venv's pip bootstrap (ensurepip) apart from python3, in python3.X-venv.
VENV_PKG=$(python3 -c 'import sys; print("python%d.%d-venv" % sys.version_info[:2])')
NEED=$(missing $APT_PACKAGES)
venv_works || python3 -c "import ensurepip" 2>/dev/null || NEED="$NEED $VENV_PKG"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
CAN_APT=$(command -v apt-get >/dev/null && { [ -z "$SUDO" ] || command -v sudo >/dev/null; } && echo yes || true)
if [ -n "${NEED// /}" ] && [ -n "$CAN_APT" ]; then
    $SUDO apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $NEED
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

.venv/bin/python - <<'EOF'
import torch, mask2flow
build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only"
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none visible"
print(f"installed into .venv: torch {torch.__version__} ({build} build); GPU: {gpu}")
EOF
NEED=$(missing $APT_PACKAGES)
[ -z "$NEED" ] || echo "note: the demo corpus (python3 data.py demo) still needs system packages: Debian/Ubuntu:" \
    "sudo apt-get install $(echo $NEED); macOS: brew install $BREW_PACKAGES (Homebrew has no festival:" \
    "build the demo corpus on Debian/Ubuntu, or train on LibriMix)"
