"""The per-run JSON file: `results/<experiment>/runs/<algorithm>-seed<k>.json`."""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from pathlib import Path


def command_line() -> list[str]:
    """The command that started this process (a spawned run child inherits its parent's argv)."""
    argv = list(sys.argv)
    if argv:
        argv[0] = os.path.basename(argv[0])
    return argv


def examples_checksum(examples: list) -> dict:
    """How many examples and a SHA-256 of their ids, prompts and gold answers: the data a run saw."""
    digest = hashlib.sha256()
    for ex in examples:
        digest.update(json.dumps([ex.id, ex.prompt, ex.answer]).encode())
    return {"examples": len(examples), "sha256": digest.hexdigest()}


def run_path(output_dir: str, experiment: str, algorithm: str, seed: int) -> Path:
    return Path(output_dir) / experiment / "runs" / f"{algorithm}-seed{seed}.json"


def _clean(value):
    # JSON has no NaN/inf: write them as null rather than producing an unreadable file.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json_atomic(path: Path, data: dict) -> None:
    """Write to a temporary file and rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(_clean(data), indent=1, sort_keys=True))
    os.replace(tmp, path)


def read_run(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not a valid run file: {err}") from None
