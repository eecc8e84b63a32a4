#!/usr/bin/env bash
# Create .venv with the exact versions of requirements.lock (torch first: the CPU wheel on this
# machine's disk; on a GPU machine pip takes the CUDA wheel of the same version).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade "pip>=24"
.venv/bin/pip install -q "torch==2.13.0"
.venv/bin/pip install -q -c requirements.lock -e ".[all]"
.venv/bin/pip check
