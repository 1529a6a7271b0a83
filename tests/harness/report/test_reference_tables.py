"""The published tables are what their runs say: each committed reference leaderboard is rebuilt
from its committed runs, and the equal-prompts README's time-to-accuracy figures with it."""

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


def test_the_equal_prompts_readme_time_to_grpos_24_step_accuracy(tmp_path):
    table = _rebuild("equal-prompts", tmp_path, target_accuracy=0.478).split("## Matched budget")[0]
    cells = [[cell.strip() for cell in line.split("|")[1:-1]] for line in table.splitlines() if line.startswith("| ")]
    rows = {row[1]: row for row in cells}  # rank, algorithm, seeds, IQM, mean, P(better), before, s to target, x faster, ...
    assert rows["grpo"][7] == "198.1 (2/2)" and rows["grpo"][4].startswith("0.631")
    assert rows["basis"][7] == "129.4 (1/2)" and rows["basis"][8] == "1.53" and rows["basis"][4].startswith("0.467")
    assert rows["a_star_po"][7] == "133.7 (1/2)" and rows["a_star_po"][4].startswith("0.487")
    assert rows["rebel"][7] == "159.4 (2/2)" and rows["rebel"][4].startswith("0.509")
