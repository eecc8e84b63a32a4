#!/usr/bin/env bash
# Regenerate requirements.lock from a fresh venv that installed the project with every extra.
# The lock pins every package so a rerun months later installs the same stack; its sha256 is
# recorded in each result's provenance.
set -euo pipefail
venv=$(mktemp -d)/venv
python3 -m venv "$venv"
"$venv/bin/pip" install -q "torch==2.13.0"
"$venv/bin/pip" install -q -e ".[all]"
{
  echo "# Exact versions of every dependency (regenerate with tools/update-lock.sh)."
  echo "# torch is pinned without a local label: the CPU wheel (+cpu) and the CUDA wheel both satisfy it."
  "$venv/bin/pip" freeze --exclude-editable | grep -v '^-e ' | sed 's/^torch==\(.*\)+cpu$/torch==\1/'
} > requirements.lock
echo "requirements.lock: $(grep -vc '^#' requirements.lock) packages"
