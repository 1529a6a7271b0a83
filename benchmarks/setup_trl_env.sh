#!/usr/bin/env bash
# The environment of benchmarks/trl_grpo_step.py: TRL beside the same torch and transformers as
# .venv, in benchmarks/.venv-trl (gitignored), so TRL never becomes a dependency of the project.
# Idempotent: a second run only checks what is there.
#
#     bash benchmarks/setup_trl_env.sh
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if [ ! -x .venv-trl/bin/python ]; then
  "$PY" -m venv .venv-trl
fi
. .venv-trl/bin/activate
python -m pip install -q --upgrade pip
# The CPU build of torch 2.13.0 lies on this machine's disk; elsewhere pip takes it from PyPI.
python -m pip install -q "torch==2.13.0"
# TRL 1.16 needs transformers>=4.56.2; pin transformers to the project's range so both sides
# run the same model code.
python -m pip install -q "transformers>=5.16.1,<5.20" "trl==1.16.0" "math-verify[antlr4_13_2]>=0.7" pyyaml
# Our tasks (prompts and verifier for the reward) without the project's dependencies.
python -m pip install -q --no-deps -e ..
echo "setup_trl_env: done ($(python -c 'import torch, transformers, trl; print("torch", torch.__version__, "transformers", transformers.__version__, "trl", trl.__version__)'))"
