#!/usr/bin/env bash
# Create .venv with the exact versions of requirements.lock and install the project
# (editable) into it. Safe to run again: does nothing when the lock is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.offshoring-lock.sha256
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r requirements.lock
    .venv/bin/python -m pip install --quiet --no-deps -e .
    echo "$want" > "$stamp"
fi
