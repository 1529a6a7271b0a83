"""What it takes to reproduce the runs: commands, configs, versions, commit, machine, data.

Each item is gathered across runs and printed once per distinct value, with the runs it holds for,
so a comparison mixing commits or machines shows it at a glance.
"""

from __future__ import annotations

import json
import shlex

MACHINE_KEYS = ("platform", "machine", "python", "cpu_count", "torch_threads", "cuda")


def run_name(record: dict) -> str:
    return f"{record['algorithm']}-seed{record['seed']}"


def distinct(records: list[dict], value_of) -> list[tuple[str, list[str]]]:
    """[(value as text, [runs with that value])], in first-seen order."""
    seen: dict[str, list[str]] = {}
    for record in records:
        seen.setdefault(value_of(record), []).append(run_name(record))
    return list(seen.items())


def _command(record: dict) -> str:
    command = record.get("command")
    if not command:
        return "(not recorded)"
    return command if isinstance(command, str) else shlex.join(command)


def _json(value) -> str:
    return json.dumps(value, indent=1, sort_keys=True, default=str) if value is not None else "(not recorded)"


def _config_without_seed(record: dict) -> str:
    return _json({k: v for k, v in (record.get("config") or {}).items() if k != "seed"})


def _commit(environment: dict) -> str:
    commit = str(environment.get("git_commit") or "(not recorded)")
    dirty = environment.get("git_dirty")
    return commit + (f" with uncommitted changes to {', '.join(dirty)}" if dirty else "")


def sections(records: list[dict]) -> list[tuple[str, str]]:
    """[(title, preformatted text)] in reading order."""
    def block(items: list[tuple[str, list[str]]]) -> str:
        if len(items) == 1:
            return items[0][0] + f"\n(all {len(items[0][1])} runs)"
        return "\n\n".join(f"{value}\n(runs: {', '.join(runs)})" for value, runs in items)

    env = lambda r: r.get("environment") or {}  # noqa: E731
    out = [
        ("Command lines", block(distinct(records, _command))),
        ("Git commit", block(distinct(records, lambda r: _commit(env(r))))),
        ("Versions", block(distinct(records, lambda r: _json(env(r).get("versions"))))),
        ("Machine", block(distinct(records, lambda r: _json({k: env(r).get(k) for k in MACHINE_KEYS if k in env(r)})))),
        ("Data checksums (SHA-256 of example ids, prompts and gold answers)",
         block(distinct(records, lambda r: _json(r.get("data"))))),
        ("Model", block(distinct(records, lambda r: f"{r.get('model', '')} -> {r.get('model_path') or '(path not recorded)'}"))),
        ("MLflow runs", "\n".join(f"{run_name(r)}: {r.get('mlflow_run_id', '(none)')}  {r.get('tracking_uri', '')}"
                                  for r in records)),
    ]
    by_algorithm: dict[str, list[dict]] = {}
    for record in records:
        by_algorithm.setdefault(record["algorithm"], []).append(record)
    for name, runs in by_algorithm.items():
        out.append((f"Resolved config: {name} (seeds {', '.join(str(r['seed']) for r in runs)})",
                    block(distinct(runs, _config_without_seed))))
    return out
