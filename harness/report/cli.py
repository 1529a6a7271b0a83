"""`rlvr-bench report EXPERIMENT`: the leaderboard of a comparison from its stored runs."""

from __future__ import annotations

import argparse


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help="leaderboard.{md,html,csv} of an experiment from its stored runs")
    p.add_argument("experiment", help="experiment name (results/<experiment>/runs, or the MLflow experiment)")
    p.add_argument("--output-dir", dest="output_dir", default="results",
                   help="folder holding <experiment>/runs; the leaderboard goes to <output-dir>/<experiment>/")
    p.add_argument("--baseline", default="grpo", help="algorithm the ratios compare against (default: grpo)")
    p.add_argument("--target-accuracy", dest="target_accuracy", type=float,
                   help="accuracy for 'time to target' (default: the highest accuracy every seed of the baseline reached)")
    p.add_argument("--tracking-uri", dest="tracking_uri",
                   help="read the runs from this MLflow tracking server/store instead of the JSON files")
    p.add_argument("--against", metavar="FOLDER",
                   help="a published reference (e.g. results/reference/default): say per algorithm whether this "
                        "experiment's final accuracy lies within the reference's interval; exit status 1 if any does not")
    p.set_defaults(func=cmd_report)
    return p


def cmd_report(args) -> int:
    from harness.report import write_report

    if args.target_accuracy is not None and not 0.0 <= args.target_accuracy <= 1.0:
        raise ValueError(f"--target-accuracy {args.target_accuracy}: expected a number in [0, 1]")
    paths = write_report(args.experiment, args.output_dir, baseline=args.baseline,
                         target_accuracy=args.target_accuracy, tracking_uri=args.tracking_uri)
    print(paths["md"].read_text().split("## Matched budget")[0].rstrip())
    for kind, path in paths.items():
        print(f"report: wrote {path}")
    if args.against is None:
        return 0
    from harness.report.against import describe, load_reference, verdicts
    from harness.report.load import load_runs

    entries = verdicts(load_runs(args.experiment, args.output_dir, args.tracking_uri), load_reference(args.against))
    for line in describe(entries, args.against):
        print(f"against: {line}")
    return 1 if any(e["within"] is False for e in entries) else 0
