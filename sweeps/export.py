"""Results of a study: the best trial as a preset `compare` accepts, the trials and Pareto tables."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import yaml
from optuna.trial import TrialState

from harness.config import PER_ALGORITHM_RUN_KEYS

# Settings of one machine or one run, not of the experiment; eval_split too: the sweep scored on
# validation, the tuned comparison reports on test.
NOT_EXPORTED = {"algorithm", "seed", "algo", "per_algorithm", "output_dir", "tracking_uri", "threads", "data_dir",
                "eval_split"}


def best_trial(study):
    """Single objective: the best trial. Multi-objective: the most accurate trial of the Pareto
    front (fewest budget seconds among equals)."""
    if len(study.directions) == 1:
        return study.best_trial
    return max(study.best_trials, key=lambda t: (t.values[0], -t.values[1]))


def portable_config(run_config: dict) -> dict:
    """The sweep's run settings that differ from RunConfig's defaults, minus per-machine ones."""
    from harness.config import RunConfig

    defaults = dataclasses.asdict(RunConfig())
    return {k: v for k, v in run_config.items()
            if k not in NOT_EXPORTED and k in defaults and v != defaults[k]}


def export_preset(study, path: str | Path) -> Path:
    """Write (or update) a YAML preset whose `per_algorithm.<algorithm>` holds the best trial's
    params. An existing preset keeps everything else, so sweeps of several algorithms exported
    to one file make one tuned comparison: `rlvr-bench compare --preset PATH`."""
    from harness.config import read_yaml

    path = Path(path)
    algorithm = study.user_attrs["algorithm"]
    base = study.user_attrs["run_config"]
    best = best_trial(study)
    tuned = {**base.get("algo", {}), **best.params}
    if path.exists():
        data = read_yaml(path)
        header = ""
    else:
        data = portable_config(base)
        experiment = base["experiment"]
        data["experiment"] = (experiment[: -len("-sweep")] if experiment.endswith("-sweep") else experiment) + "-tuned"
        compare = study.user_attrs.get("compare") or {}
        data["compare"] = {"algorithms": [], "seeds": compare.get("seeds", [0, 1])}
        header = (f"# Tuned preset written by `rlvr-bench sweep --export`; run it with\n"
                  f"#   rlvr-bench compare --preset {path}\n")
    sections = data.setdefault("per_algorithm", {})
    kept = {k: v for k, v in (sections.get(algorithm) or {}).items() if k in PER_ALGORITHM_RUN_KEYS}  # its run length
    sections[algorithm] = {**kept, **tuned}
    algorithms = data.setdefault("compare", {}).setdefault("algorithms", [])
    if algorithm not in algorithms:
        algorithms.append(algorithm)
    values = ", ".join(f"{v:.4f}" for v in best.values)
    note = (f"# {algorithm}: study {study.study_name!r}, trial {best.number} of "
            f"{len(study.get_trials(states=(TrialState.COMPLETE,)))} complete, objective(s) {values}\n")
    text = header + note + yaml.safe_dump(data, sort_keys=False)
    if not header:  # keep the notes of earlier exports to this file
        old = [line + "\n" for line in path.read_text().splitlines() if line.startswith("#")]
        text = "".join(old) + note + yaml.safe_dump(data, sort_keys=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_trials(study, folder: Path) -> Path:
    """Every trial: number, state, objective value(s), params, MLflow run id."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "trials.csv"
    trials = study.get_trials(deepcopy=False)
    names = sorted({k for t in trials for k in t.params})
    objectives = ["accuracy", "seconds"][: len(study.directions)]
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["trial", "state", *objectives, *names, "baseline", "mlflow_run_id"])
        for t in trials:
            values = t.values or [None] * len(objectives)
            out.writerow([t.number, t.state.name, *values, *(t.params.get(n) for n in names),
                          bool(t.user_attrs.get("baseline")), t.user_attrs.get("mlflow_run_id")])
    return path


def write_pareto(study, folder: Path) -> tuple[Path, Path]:
    """Multi-objective: the Pareto front (accuracy up, budget seconds down) as CSV and PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    front = sorted(study.best_trials, key=lambda t: t.values[1])
    names = sorted({k for t in front for k in t.params})
    csv_path, png_path = folder / "pareto.csv", folder / "pareto.png"
    with csv_path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["trial", "accuracy", "seconds", *names])
        for t in front:
            out.writerow([t.number, *t.values, *(t.params.get(n) for n in names)])
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.scatter([t.values[1] for t in done], [t.values[0] for t in done], c="0.6", label="trials")
    ax.plot([t.values[1] for t in front], [t.values[0] for t in front], "o-", c="C3", label="Pareto front")
    for t in front:
        ax.annotate(str(t.number), (t.values[1], t.values[0]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("budget seconds")
    ax.set_ylabel("held-out accuracy")
    ax.set_title(f"{study.study_name}: {len(done)} trials")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return csv_path, png_path
