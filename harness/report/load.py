"""Stored runs of one experiment: from `results/<experiment>/runs/*.json` or from MLflow.

Both give the same record shape as `harness.train.run_training` writes (the fields the report
reads: algorithm, seed, config, environment, command, data, summary, final_metrics, eval_curve,
diag_curve, history).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from harness.paths import RUNS, experiment_dir
from harness.records import read_run

REQUIRED = ("algorithm", "seed", "summary", "final_metrics", "eval_curve")
BUDGET_KEYS = ("budget/samples", "budget/generated_tokens", "budget/flops", "budget/seconds")


def runs_dir(output_dir: str | Path, experiment: str) -> Path:
    return experiment_dir(output_dir, experiment) / RUNS


def check_record(record: dict, where: str) -> dict:
    for key in REQUIRED:
        if key not in record:
            raise ValueError(f"{where}: missing field {key!r} (not a run record of rlvr-bench)")
    if not record["eval_curve"]:
        raise ValueError(f"{where}: field 'eval_curve' is empty")
    for i, point in enumerate(record["eval_curve"]):
        for key in ("eval/accuracy", *BUDGET_KEYS):
            if key not in point:
                raise ValueError(f"{where}: eval_curve[{i}] lacks {key!r}")
    return record


def load_files(output_dir: str | Path, experiment: str) -> list[dict]:
    """Every `<algorithm>-seed<k>.json` of the experiment, sorted by (algorithm, seed)."""
    folder = runs_dir(output_dir, experiment)
    paths = sorted(folder.glob("*.json"))
    if not paths:
        raise ValueError(f"no run files in {folder} (run `rlvr-bench compare --experiment {experiment}` first, "
                         f"or pass --output-dir / --tracking-uri)")
    records = [check_record(read_run(path), str(path)) for path in paths]
    return sorted(records, key=lambda r: (r["algorithm"], r["seed"]))


def _history(client, run_id: str, key: str) -> list:
    return sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))


def _record_from_mlflow(client, run, tracking_uri: str) -> dict:
    """One MLflow run as a run record: params -> config, metric histories -> curves."""
    params, tags, metrics = dict(run.data.params), dict(run.data.tags), dict(run.data.metrics)
    run_id = run.info.run_id
    accuracy = _history(client, run_id, "eval/accuracy")
    # Every logged value at a step; eval points take the budget logged at their own step.
    at_step: dict[str, dict[int, float]] = {}
    for key in (*BUDGET_KEYS, "timing_s/eval", "eval/response_length"):
        at_step[key] = {m.step: m.value for m in _history(client, run_id, key)}
    curve = []
    for m in accuracy:
        point = {"step": m.step, "eval/accuracy": m.value}
        point.update({key: values[m.step] for key, values in at_step.items() if m.step in values})
        curve.append(point)
    history: list[dict] = []
    diag: dict[int, dict] = {}
    for key in metrics:
        if key.startswith("timing_s/") or key == "train/value_mse":
            history += [{"step": m.step, key: m.value} for m in _history(client, run_id, key)]
        elif key.startswith("diag/"):
            for m in _history(client, run_id, key):
                diag.setdefault(m.step, {"step": m.step})[key] = m.value
    versions = {k.removeprefix("version."): v for k, v in params.items() if k.startswith("version.")}
    config = {k: v for k, v in params.items()
              if not k.startswith(("version.", "data.")) and k not in ("command", "git_commit", "model_path")}
    seed = tags.get("seed", params.get("seed", "0"))
    return {
        "algorithm": tags.get("algorithm") or params.get("algorithm"),
        "seed": int(seed),
        "task": tags.get("task"), "model": tags.get("model"), "engine": tags.get("engine"),
        "budget": None if params.get("budget") in (None, "None") else params["budget"],
        "tracking_uri": tracking_uri,
        "config": config,
        "environment": {"git_commit": params.get("git_commit"), "versions": versions},
        "command": shlex.split(params["command"]) if params.get("command") else None,
        "data": {"train": {"sha256": params.get("data.train_sha256")},
                 "eval": {"sha256": params.get("data.eval_sha256")}} if "data.train_sha256" in params else None,
        "model_path": params.get("model_path"),
        "mlflow_run_id": run_id,
        "summary": {"accuracy_before": curve[0]["eval/accuracy"] if curve else None,
                    "accuracy_after": curve[-1]["eval/accuracy"] if curve else None,
                    "wall_s": metrics.get("time/wall_s")},
        "final_metrics": metrics,
        "eval_curve": curve,
        "diag_curve": [diag[s] for s in sorted(diag)],
        "history": history,
    }


def load_mlflow(experiment: str, tracking_uri: str) -> list[dict]:
    """The finished runs (tagged with an algorithm) of an MLflow experiment; the latest run per
    (algorithm, seed) when a pair was run more than once."""
    from mlflow.tracking import MlflowClient

    from harness.records import portable_record

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise ValueError(f"--tracking-uri {tracking_uri}: no MLflow experiment named {experiment!r}")
    runs = client.search_runs([found.experiment_id], filter_string="attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time ASC"], max_results=10_000)
    latest = {}
    for run in runs:
        if "algorithm" in run.data.tags:
            latest[(run.data.tags["algorithm"], run.data.tags.get("seed"))] = run
    records = []
    for run in latest.values():
        record = portable_record(_record_from_mlflow(client, run, tracking_uri))  # as the JSON files say them
        record["experiment"] = experiment
        records.append(check_record(record, f"MLflow run {run.info.run_id} ({tracking_uri})"))
    if not records:
        raise ValueError(f"--tracking-uri {tracking_uri}: experiment {experiment!r} has no finished runs "
                         f"tagged with an algorithm")
    return sorted(records, key=lambda r: (r["algorithm"], r["seed"]))


def load_runs(experiment: str, output_dir: str | Path = "results", tracking_uri: str | None = None) -> list[dict]:
    return load_mlflow(experiment, tracking_uri) if tracking_uri else load_files(output_dir, experiment)
