"""The per-run JSON file, `results/<experiment>/runs/<algorithm>-seed<k>.json` (`harness.paths`)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from pathlib import Path

from harness.paths import cache_dir, run_path, write_text_atomic  # noqa: F401 (run_path: tests import it here)


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


REPOSITORY = Path(__file__).resolve().parents[1]
PORTABLE_KEYS = ("model_path", "tracking_uri", "command")
PORTABLE_CONFIG_KEYS = ("data_dir", "output_dir", "tracking_uri", "model")


def portable(text: str, roots: list[tuple[Path | str, str]] | None = None) -> str:
    """`text` with this machine's locations by name: the repository -> `.`, the cache folder ->
    `$RLVR_CACHE_DIR`, the home folder -> `~` (the first that matches, in that order), so a
    committed record says where things were without naming one machine's folders."""
    roots = roots or [(REPOSITORY, "."), (cache_dir(), "$RLVR_CACHE_DIR"), (Path.home(), "~")]
    for root, name in roots:
        root = str(root).rstrip("/")
        if text == root:
            return name
        text = text.replace(root + "/", name + "/")
    return text


def portable_record(record: dict, roots: list[tuple[Path | str, str]] | None = None) -> dict:
    """A run record whose paths (:data:`PORTABLE_KEYS`, the config's :data:`PORTABLE_CONFIG_KEYS`)
    are :func:`portable`; every number stays as it is."""
    def fix(value):
        if isinstance(value, str):
            return portable(value, roots)
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    out = dict(record)
    for key in PORTABLE_KEYS:
        if key in out:
            out[key] = fix(out[key])
    if isinstance(out.get("data"), dict) and "data_dir" in out["data"]:
        out["data"] = {**out["data"], "data_dir": fix(out["data"]["data_dir"])}
    if isinstance(out.get("config"), dict):
        out["config"] = {k: fix(v) if k in PORTABLE_CONFIG_KEYS else v for k, v in out["config"].items()}
    return out


def write_run(path: Path, record: dict) -> None:
    """The run's JSON file, its paths made :func:`portable`."""
    write_json_atomic(path, portable_record(record))


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
    """`data` as JSON (NaN/inf as null) through :func:`harness.paths.atomic_file`."""
    write_text_atomic(path, json.dumps(_clean(data), indent=1, sort_keys=True))


def read_run(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not a valid run file: {err}") from None
