"""`rlvr-bench report EXPERIMENT --against results/reference/default`: does a fresh comparison
reproduce a published one? Per algorithm, whether the fresh runs' IQM of final accuracy lies
within the reference's spread: its 95 % IQM interval from 3 reference seeds on, else the range of
its seeds (what a reference of fewer seeds can say)."""

from __future__ import annotations

import math
from pathlib import Path

import harness.report.stats as stats
from harness.report.leaderboard import leaderboard, spread
from harness.report.load import load_files, runs_dir


def load_reference(folder: str | Path) -> list[dict]:
    """The runs of a published reference folder (`<folder>/runs/*.json`)."""
    folder = Path(folder)
    if not runs_dir(folder.parent, folder.name).is_dir():
        raise ValueError(f"--against {folder}: no runs/ folder there (expected e.g. results/reference/default)")
    return load_files(folder.parent, folder.name)


def verdicts(records: list[dict], reference: list[dict]) -> list[dict]:
    """One entry per algorithm of the fresh runs: its IQM, the reference's (low, high) and kind
    ("95% IQM interval" or "range"), and `within` (None where the reference lacks the algorithm)."""
    fresh = {r["algorithm"]: r for r in leaderboard(records, baseline=None)["rows"]}
    ref = {r["algorithm"]: r for r in leaderboard(reference, baseline=None)["rows"]}
    out = []
    for name, row in sorted(fresh.items()):
        entry = {"algorithm": name, "iqm": row["accuracy_iqm"], "seeds": row["seeds"]}
        if name not in ref:
            entry.update(low=math.nan, high=math.nan, kind=None, reference_seeds=0, within=None)
        else:
            low, high = spread(ref[name])
            kind = "95% IQM interval" if ref[name]["seeds"] >= stats.MIN_SEEDS_FOR_INTERVAL else "range"
            entry.update(low=low, high=high, kind=kind, reference_seeds=ref[name]["seeds"],
                         reference_iqm=ref[name]["accuracy_iqm"], within=bool(low <= row["accuracy_iqm"] <= high))
        out.append(entry)
    return out


def describe(entries: list[dict], against: str | Path) -> list[str]:
    lines = []
    for e in entries:
        if e["within"] is None:
            lines.append(f"{e['algorithm']}: not in {against}; nothing to compare with")
            continue
        verdict = "within" if e["within"] else "OUTSIDE"
        lines.append(f"{e['algorithm']}: IQM {e['iqm']:.3f} ({e['seeds']} seeds) {verdict} the reference's {e['kind']} "
                     f"[{e['low']:.3f}, {e['high']:.3f}] ({e['reference_seeds']} seeds, IQM {e['reference_iqm']:.3f})")
    return lines
