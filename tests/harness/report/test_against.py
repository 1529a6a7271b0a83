"""`report --against`: per algorithm, whether a comparison's IQM lies within a reference's interval
(from 3 seeds on) or range (below)."""

import shutil
from pathlib import Path

from synthetic_runs import synthetic_records

from harness.cli import main
from harness.report.against import verdicts

REFERENCE = Path(__file__).resolve().parents[3] / "results" / "reference"


def test_a_reference_against_itself_and_against_another(tmp_path, capsys):
    shutil.copytree(REFERENCE / "default" / "runs", tmp_path / "fresh" / "runs")
    assert main(["report", "fresh", "--output-dir", str(tmp_path), "--against", str(REFERENCE / "default")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("against: ")]
    assert len(lines) == 7 and all(" within the reference's 95% IQM interval " in line for line in lines)
    # Equal prompts end elsewhere (every algorithm near 0.99): outside its intervals; the
    # algorithms that reference lacks are named, not judged.
    assert main(["report", "fresh", "--output-dir", str(tmp_path), "--against", str(REFERENCE / "equal-prompts")]) == 1
    out = capsys.readouterr().out
    assert ("against: grpo: IQM 0.376 (5 seeds) OUTSIDE the reference's 95% IQM interval [0.985, 0.992] "
            "(5 seeds, IQM 0.989)") in out
    assert "against: rloo: not in" in out


def test_three_reference_seeds_give_an_iqm_interval():
    reference = synthetic_records()  # grpo and a_star_po with 3 seeds, ppo with 2
    shift = {"a_star_po": 0.2, "grpo": 0.0, "ppo": 0.0}
    fresh = [dict(r, summary={**r["summary"], "accuracy_after": r["summary"]["accuracy_after"] + shift[r["algorithm"]]})
             for r in reference]
    by_name = {e["algorithm"]: e for e in verdicts(fresh, reference)}
    assert by_name["grpo"]["kind"] == "95% IQM interval" and by_name["grpo"]["within"] is True
    assert by_name["a_star_po"]["within"] is False  # 0.2 above its own interval
    assert by_name["ppo"]["kind"] == "range" and by_name["ppo"]["within"] is True
    assert verdicts(fresh, [r for r in reference if r["algorithm"] != "ppo"])[2]["within"] is None


def test_against_a_folder_without_runs_names_it(tmp_path, capsys):
    shutil.copytree(REFERENCE / "default" / "runs", tmp_path / "fresh" / "runs")
    assert main(["report", "fresh", "--output-dir", str(tmp_path), "--against", str(tmp_path / "nowhere")]) == 2
    assert "--against " in capsys.readouterr().err
