#!/usr/bin/env bash
# Make (or reuse) the project-local virtual environment `.venv` with the pinned Python packages of
# scripts/requirements-pip.txt: torch 2.11 (its CUDA 13 build, whose LibTorch the `pip` build leg
# compiles against), transformers, tokenizers, safetensors, tensorboard, trl, peft, math-verify. They are
# references for the interop tests and benchmarks only; nothing in training needs Python.
# Reused while the requirements file is unchanged (a hash stamp); ~5 GB, ~2 min cold with PyPI.
#   scripts/venv.sh            prints the venv's python on its last line
# Env: PYTHON (the interpreter that makes the venv; default python3 >= 3.10).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv req=scripts/requirements-pip.txt
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && "$(cat "$venv/.requirements.sha256" 2>/dev/null)" == "$want" ]]; then
  echo "$PWD/$venv/bin/python"; exit 0
fi
py="${PYTHON:-python3}"
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "venv: $py is older than 3.10" >&2; exit 1; }
[[ -x "$venv/bin/python" ]] || "$py" -m venv "$venv"
echo "venv: installing scripts/requirements-pip.txt into $venv (torch's CUDA build pulls ~4 GB of wheels)" >&2
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$req" >&2
echo "$want" > "$venv/.requirements.sha256"
echo "$PWD/$venv/bin/python"
