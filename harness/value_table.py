"""The value-estimation table: per estimator and diagnostic step, the mean squared error of its
baseline against the Monte-Carlo value of the current policy, over seeds.

A pure function of run files (`results/<experiment>/runs/*.json`, their `diag_curve`, written by
harness/diagnostic.py with `--diag-every`); imports no training code.

Monte-Carlo noise: a probe prompt's MC value m_i is the mean of K rollouts held out from every
estimator, so E[(b_i - m_i)^2] = (b_i - p_i)^2 + p_i (1 - p_i) / K. The diagnostic logs the
unbiased estimate of the second term, mean_i m_i (1 - m_i) / (K - 1), as `diag/mc_noise`; the
table subtracts it from every raw MSE (so a near-exact estimator can read slightly below zero).

Headline: BASIS's paper reports a value error 69 % below REINFORCE++'s batch mean and below an
n = 8 group mean. Its claim is about training, so the headline averages the steps after step 0;
the claim reproduces here when BASIS's best variant is at most 0.5x the batch mean's error and
below the n = 8 group mean's.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from harness.paths import RUNS, write_text_atomic

PREFIX = "diag/value_mse/"
NOISE_KEY = "diag/mc_noise"
K_KEY = "diag/mc_samples"
BATCH_MEAN = "batch_mean"
GROUP_MEAN = "group_mean_8"
CLAIM_RATIO = 0.5  # "at most half REINFORCE++'s error" (the paper: -69 %)

# Baselines of the other methods; every other estimator the diagnostic logs is a BASIS variant.
OTHERS = {
    BATCH_MEAN: "REINFORCE++: batch mean, 1 rollout per prompt",
    "group_mean_8": "GRPO: group mean, n = 8",
    "group_mean": "GRPO: group mean, n = 8",
    "leave_one_out_8": "RLOO: leave-one-out mean, n = 8",
    "leave_one_out": "RLOO: leave-one-out mean, n = 8",
    "a_star_po_v_star": "A*-PO: V* from the offline samples",
}
BASIS_LABELS = {
    "prior": "BASIS: offline prior (Jeffreys)",
    "calibrated": "BASIS: calibrated prior (2-fold logistic)",
    "calibrated_kernel": "BASIS: calibrated + prompt kernel",
    "kernel": "BASIS: calibrated + prompt kernel",
    "blue": "BASIS: BLUE over the batch (public description)",
    "online": "BASIS: online prior (discounted Beta posterior)",
    "online_blue": "BASIS: online prior + BLUE batch sharing",
}


def label(name: str) -> str:
    return OTHERS.get(name) or BASIS_LABELS.get(name) or f"BASIS: {name}"


def is_basis(name: str) -> bool:
    return name not in OTHERS and not name.startswith(("group_mean_", "leave_one_out_"))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def load_records(folder: str | Path) -> list[dict]:
    """The run files of `<folder>/runs`, each with a diagnostic curve; errors name the file."""
    paths = sorted(Path(folder, RUNS).glob("*.json"))
    if not paths:
        raise ValueError(f"{Path(folder, RUNS)}: no run files (run `rlvr-bench compare --preset value-estimation`)")
    records = []
    for path in paths:
        record = json.loads(path.read_text())
        curve = record.get("diag_curve") or []
        if not curve:
            raise ValueError(f"{path}: no diagnostic curve (the run had --diag-every 0)")
        for point in curve:
            if NOISE_KEY not in point or K_KEY not in point:
                raise ValueError(f"{path}: step {point.get('step')} has no {NOISE_KEY} / {K_KEY} (written before "
                                 "the diagnostic logged its Monte-Carlo noise); run it again")
        records.append(record)
    return records


def _group_mean_as_n8(record: dict) -> dict:
    """The group mean under one name whichever the diagnostic logged (it has n = 8 by default;
    another n is refused rather than compared with the paper's n = 8)."""
    curve = []
    for point in record["diag_curve"]:
        point = dict(point)
        other = [k for k in point if k.startswith(PREFIX + "group_mean_") and k != PREFIX + GROUP_MEAN]
        if other:
            raise ValueError(f"run {record['algorithm']}-seed{record['seed']}: {other[0]} is not the n = 8 group mean")
        if PREFIX + "group_mean" in point:
            point[PREFIX + GROUP_MEAN] = point.pop(PREFIX + "group_mean")
        curve.append(point)
    return {**record, "diag_curve": curve}


def corrected(point: dict, name: str) -> float:
    """One estimator's MSE at one diagnostic point, the Monte-Carlo noise subtracted."""
    return float(point[PREFIX + name]) - float(point[NOISE_KEY])


def build_table(records: list[dict]) -> dict:
    """{"rows", "steps", "seeds", "mc_samples", "probe", "algorithms", "headline", "verdict"}."""
    records = [_group_mean_as_n8(r) for r in records]
    steps = sorted({p["step"] for r in records for p in r["diag_curve"]})
    names = sorted({k.removeprefix(PREFIX) for r in records for p in r["diag_curve"] for k in p if k.startswith(PREFIX)},
                   key=lambda n: (is_basis(n), n))
    ks = sorted({int(p[K_KEY]) for r in records for p in r["diag_curve"]})
    # per estimator, per seed: {step: corrected MSE}
    by_seed = {name: {r["seed"]: {p["step"]: corrected(p, name) for p in r["diag_curve"] if PREFIX + name in p}
                      for r in records} for name in names}

    def over_steps(name: str, seed: int, training_only: bool) -> float:
        return _mean([v for s, v in by_seed[name][seed].items() if s > 0 or not training_only])

    seeds = sorted({r["seed"] for r in records})
    rows = []
    for name in names:
        row = {"estimator": name, "label": label(name), "basis": is_basis(name)}
        for step in steps:
            row[f"step {step}"] = _mean([by_seed[name][s][step] for s in seeds if step in by_seed[name][s]])
        row["all steps"] = _mean([over_steps(name, s, False) for s in seeds])
        row["training steps"] = _mean([over_steps(name, s, True) for s in seeds])
        rows.append(row)
    # Where the policy is: the probe prompts' mean Monte-Carlo value at each step (over seeds).
    values = {step: [float(p["diag/mc_value_mean"]) for r in records for p in r["diag_curve"]
                     if p["step"] == step and "diag/mc_value_mean" in p] for step in steps}
    table = {"rows": rows, "steps": steps, "seeds": seeds, "mc_samples": ks,
             "mc_value": {step: _mean(v) for step, v in values.items()},
             "probe": sorted({int(r["config"].get("diag_probe", 0)) for r in records}),
             "algorithms": sorted({r["algorithm"] for r in records})}
    table["headline"] = headline(rows, by_seed, seeds, over_steps)
    table["verdict"] = verdict(table["headline"])
    return table


def headline(rows: list[dict], by_seed: dict, seeds: list[int], over_steps) -> list[dict]:
    """Each estimator's training-steps error relative to REINFORCE++'s and to the n = 8 group mean:
    the ratio of the means over seeds, and the range of the per-seed ratios."""
    out = []
    for row in rows:
        name = row["estimator"]
        entry = {"estimator": name, "label": row["label"], "basis": row["basis"], "mse": row["training steps"]}
        for ref in (BATCH_MEAN, GROUP_MEAN):
            if ref not in by_seed or ref == name:
                continue
            base = _mean([over_steps(ref, s, True) for s in seeds])
            per_seed = [over_steps(name, s, True) / over_steps(ref, s, True) for s in seeds]
            entry[f"vs {ref}"] = row["training steps"] / base
            entry[f"vs {ref} seeds"] = (min(per_seed), max(per_seed))
        out.append(entry)
    return out


def verdict(entries: list[dict]) -> dict:
    basis = [e for e in entries if e["basis"] and math.isfinite(e["mse"])]
    if not basis or not any(f"vs {BATCH_MEAN}" in e for e in basis) or not any(f"vs {GROUP_MEAN}" in e for e in basis):
        return {"reproduces": None, "text": "No verdict: the runs lack BASIS's estimators, the batch mean or the "
                                            "n = 8 group mean."}
    best = min(basis, key=lambda e: e["mse"])
    vs_batch, vs_group = best[f"vs {BATCH_MEAN}"], best[f"vs {GROUP_MEAN}"]
    ok = vs_batch <= CLAIM_RATIO and vs_group < 1.0
    text = (f"BASIS's claim {'reproduces' if ok else 'does not reproduce'} here: its best variant ({best['estimator']}) "
            f"has {vs_batch:.2f}x REINFORCE++'s batch-mean error ({100 * (vs_batch - 1):+.0f} %; the paper: -69 %, "
            f"the bar: at most {CLAIM_RATIO}x) and {vs_group:.2f}x the n = 8 group mean's "
            f"({'below' if vs_group < 1 else 'not below'} it; the paper: below), over the training steps.")
    return {"reproduces": ok, "best": best["estimator"], "vs_batch_mean": vs_batch, "vs_group_mean": vs_group,
            "text": text}


def _fmt(value: float) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _ratio(entry: dict, ref: str) -> str:
    if f"vs {ref}" not in entry:
        return "–"
    low, high = entry[f"vs {ref} seeds"]
    return f"{entry[f'vs {ref}']:.2f} [{low:.2f}, {high:.2f}]"


def markdown(table: dict) -> str:
    steps = [f"step {s}" for s in table["steps"]]
    k = "/".join(str(k) for k in table["mc_samples"])
    lines = [
        "# Value-estimation table",
        "",
        f"Runs: {', '.join(table['algorithms'])} training, seeds {', '.join(map(str, table['seeds']))}; "
        f"{'/'.join(map(str, table['probe']))} probe prompts, K = {k} Monte-Carlo rollouts each.",
        "Mean squared error of each baseline against the Monte-Carlo value of the current policy, the "
        f"Monte-Carlo noise mean m(1 - m)/(K - 1) subtracted; mean over seeds.",
        "",
        "## Headline (training steps, after step 0)",
        "",
        table["verdict"]["text"],
        "",
        "| estimator | MSE | x REINFORCE++ batch mean [seeds' range] | x group mean n = 8 [seeds' range] |",
        "|---|---|---|---|",
    ]
    for e in table["headline"]:
        lines.append(f"| {e['label']} (`{e['estimator']}`) | {_fmt(e['mse'])} | {_ratio(e, BATCH_MEAN)} | "
                     f"{_ratio(e, GROUP_MEAN)} |")
    lines += ["", "## Per step", "", "| estimator | " + " | ".join(steps) + " | all steps | training steps |",
              "|---|" + "---|" * (len(steps) + 2)]
    for row in table["rows"]:
        cells = [_fmt(row[c]) for c in (*steps, "all steps", "training steps")]
        lines.append(f"| {row['label']} (`{row['estimator']}`) | " + " | ".join(cells) + " |")
    lines.append("| *Monte-Carlo value of the policy, probe mean (not an error)* | "
                 + " | ".join(_fmt(table["mc_value"][s]) for s in table["steps"]) + " | | |")
    return "\n".join(lines) + "\n"


def to_csv(table: dict) -> str:
    out = io.StringIO()
    steps = [f"step {s}" for s in table["steps"]]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["estimator", "label", "basis", *steps, "all steps", "training steps",
                     "x batch_mean", "x group_mean_8"])
    heads = {e["estimator"]: e for e in table["headline"]}
    for row in table["rows"]:
        e = heads[row["estimator"]]
        writer.writerow([row["estimator"], row["label"], row["basis"], *(f"{row[c]:.6g}" for c in steps),
                         f"{row['all steps']:.6g}", f"{row['training steps']:.6g}",
                         f"{e.get('vs ' + BATCH_MEAN, math.nan):.4g}", f"{e.get('vs ' + GROUP_MEAN, math.nan):.4g}"])
    return out.getvalue()


def write_value_table(folder: str | Path) -> dict[str, Path]:
    """`<folder>/value-table.{md,csv}` from `<folder>/runs/*.json`."""
    table = build_table(load_records(folder))
    paths = {}
    for kind, text in (("md", markdown(table)), ("csv", to_csv(table))):
        path = Path(folder) / f"value-table.{kind}"
        write_text_atomic(path, text)
        paths[kind] = path
    return paths


def portable(value, replacements: list[tuple[str, str]]):
    """`value` with every string's machine-local prefixes replaced (a committed run names no home
    or checkout folder of the machine it ran on)."""
    if isinstance(value, str):
        for old, new in replacements:
            value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {k: portable(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v, replacements) for v in value]
    return value


def make_runs_portable(folder: str | Path) -> list[Path]:
    """Rewrite `<folder>/runs/*.json` with the checkout as `.` and the home folder as `~`."""
    from harness.records import write_json_atomic

    replacements = [(str(Path.cwd().resolve()) + "/", ""), (str(Path.home()) + "/", "~/")]
    paths = sorted(Path(folder, RUNS).glob("*.json"))
    for path in paths:
        write_json_atomic(path, portable(json.loads(path.read_text()), replacements))
    return paths


EPILOG = """examples:
  rlvr-bench compare --preset value-estimation --threads 1 --output-dir results/reference
  rlvr-bench value-table --experiment value-estimation --output-dir results/reference --portable
"""


def add_value_table_parser(sub) -> None:
    import argparse

    p = sub.add_parser("value-table", help="the value-estimation table (value-table.{md,csv}) from a comparison's "
                                           "runs with the value diagnostic (--diag-every)",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", default="value-estimation", help="the comparison's name (its folder)")
    p.add_argument("--output-dir", default="results", help="the folder holding <experiment>/runs")
    p.add_argument("--portable", action="store_true",
                   help="first rewrite the run files without this machine's checkout and home paths (to commit them)")
    p.set_defaults(func=cmd_value_table)


def cmd_value_table(args) -> int:
    folder = Path(args.output_dir) / args.experiment
    if args.portable:
        make_runs_portable(folder)
    paths = write_value_table(folder)
    print(build_table(load_records(folder))["verdict"]["text"])
    print(f"value-table: {paths['md']} and {paths['csv']}")
    return 0
