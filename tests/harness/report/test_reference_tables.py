"""The published tables are what their runs say: each committed reference leaderboard is rebuilt
from its committed runs (its HTML and CSV are not committed: rebuilt and checked here), and the
equal-prompts README's time-to-accuracy figures with it. The committed runs name no machine's folders."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from harness.report import write_report

REFERENCE = Path(__file__).resolve().parents[3] / "results" / "reference"


def _rebuild(name: str, tmp_path: Path, **kwargs) -> str:
    shutil.copytree(REFERENCE / name / "runs", tmp_path / name / "runs")
    return write_report(name, str(tmp_path), **kwargs)["md"].read_text()


@pytest.mark.parametrize("name", ["default", "equal-prompts"])
def test_the_committed_leaderboard_is_rebuilt_from_the_committed_runs(name, tmp_path):
    assert _rebuild(name, tmp_path) == (REFERENCE / name / "leaderboard.md").read_text()
    runs = [json.loads(p.read_text()) for p in sorted((REFERENCE / name / "runs").glob("*.json"))]
    with open(tmp_path / name / "leaderboard.csv") as f:
        rows = {row["algorithm"]: row for row in csv.DictReader(f)}
    assert sorted(rows) == sorted({r["algorithm"] for r in runs})
    for algorithm, row in rows.items():
        final = [r["summary"]["accuracy_after"] for r in runs if r["algorithm"] == algorithm]
        assert float(row["accuracy_mean"]) == pytest.approx(sum(final) / len(final), abs=1e-12)
        assert (float(row["accuracy_min"]), float(row["accuracy_max"])) == (min(final), max(final))
    html = (tmp_path / name / "leaderboard.html").read_text()
    assert html.count("<table") == 2 and "data:image/png;base64," in html
    assert not (REFERENCE / name / "leaderboard.html").exists() and not (REFERENCE / name / "leaderboard.csv").exists()


@pytest.mark.parametrize("name", ["default", "equal-prompts"])
def test_the_committed_runs_name_no_machines_folders(name):
    for path in sorted((REFERENCE / name / "runs").glob("*.json")):
        record = json.loads(path.read_text())
        text = json.dumps({k: record.get(k) for k in ("model_path", "tracking_uri", "command", "config", "data")})
        for local in ("/root", "/home/", "/work/", "/tmp/", "/Users/"):
            assert local not in text, f"{path}: {local}"
        assert record["model_path"].startswith(("$RLVR_CACHE_DIR/", "harness/warm_start", "./harness/warm_start")), path


def test_portable_names_the_repository_cache_and_home(tmp_path):
    from harness.records import portable, portable_record

    roots = [(tmp_path / "repo", "."), (tmp_path / "home" / ".cache" / "rlvr-bench", "$RLVR_CACHE_DIR"), (tmp_path / "home", "~")]
    record = {"model_path": str(tmp_path / "home/.cache/rlvr-bench/models/tiny"), "tracking_uri": f"sqlite:///{tmp_path}/repo/results/mlflow.db",
              "command": ["rlvr-bench", "train", "--data-dir", str(tmp_path / "home/data")], "config": {"data_dir": str(tmp_path / "home/data"), "lr": 0.1},
              "summary": {"accuracy_after": 0.5}}
    out = portable_record(record, roots)
    assert out["model_path"] == "$RLVR_CACHE_DIR/models/tiny" and out["tracking_uri"] == "sqlite:///./results/mlflow.db"
    assert out["command"][-1] == "~/data" == out["config"]["data_dir"] and out["summary"] == record["summary"]
    assert portable(str(tmp_path / "repo"), roots) == "." and portable("/elsewhere/x", roots) == "/elsewhere/x"


@pytest.mark.parametrize("target, times", [
    (None, {"grpo": ("287.0 (5/5)", "1.00"), "basis": ("206.5 (5/5)", "1.39"), "a_star_po": ("293.1 (5/5)", "0.98")}),
    (0.95, {"grpo": ("209.2 (5/5)", "1.00"), "basis": ("122.7 (5/5)", "1.70"), "a_star_po": ("152.3 (5/5)", "1.37")}),
])
def test_the_equal_prompts_readme_times_to_grpos_accuracy(target, times, tmp_path):
    table = _rebuild("equal-prompts", tmp_path, target_accuracy=target).split("## Matched budget")[0]
    cells = [[cell.strip() for cell in line.split("|")[1:-1]] for line in table.splitlines() if line.startswith("| ")]
    rows = {row[1]: row for row in cells}  # rank, algorithm, seeds, IQM, mean, P(better), before, s to target, x faster, ...
    assert {name: (row[7], row[8]) for name, row in rows.items() if name in times} == times
    readme = (REFERENCE / "equal-prompts" / "README.md").read_text()
    for seconds, ratio in times.values():
        assert seconds.split()[0] in readme and (ratio == "1.00" or ratio in readme)
