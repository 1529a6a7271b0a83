"""The value-estimation table on hand-computed numbers: Monte-Carlo noise subtracted, the headline
over the training steps only, the verdict's bar; and a committed table rebuilt from its runs."""

import json
import shutil
from pathlib import Path

import pytest

from harness.value_table import build_table, load_records, markdown, portable, write_value_table



def point(step, noise, **mse):
    return {"step": step, "diag/mc_noise": noise, "diag/mc_samples": 16,
            **{f"diag/value_mse/{k}": v for k, v in mse.items()}}


def record(seed, curve):
    return {"algorithm": "basis", "seed": seed, "config": {"diag_probe": 64}, "diag_curve": curve}


RECORDS = [
    record(0, [point(0, 0.01, batch_mean=0.05, group_mean=0.03, calibrated=0.02),
               point(8, 0.02, batch_mean=0.10, group_mean=0.04, calibrated=0.03)]),
    record(1, [point(0, 0.01, batch_mean=0.07, group_mean=0.03, calibrated=0.06),
               point(8, 0.00, batch_mean=0.06, group_mean=0.03, calibrated=0.05)]),
]


def test_noise_subtracted_means_over_seeds_and_the_training_steps_headline():
    table = build_table(RECORDS)
    rows = {r["estimator"]: r for r in table["rows"]}
    assert set(rows) == {"batch_mean", "group_mean_8", "calibrated"}  # the group mean under its n = 8 name
    # batch mean: step 0 (0.04 + 0.06) / 2; step 8 (0.08 + 0.06) / 2
    assert rows["batch_mean"]["step 0"] == pytest.approx(0.05)
    assert rows["batch_mean"]["step 8"] == pytest.approx(0.07)
    assert rows["batch_mean"]["all steps"] == pytest.approx(0.06)
    assert rows["calibrated"]["training steps"] == pytest.approx((0.01 + 0.05) / 2)
    head = {e["estimator"]: e for e in table["headline"]}
    assert head["calibrated"]["vs batch_mean"] == pytest.approx(0.03 / 0.07)
    assert head["calibrated"]["vs batch_mean seeds"] == pytest.approx((0.01 / 0.08, 0.05 / 0.06))
    assert head["calibrated"]["vs group_mean_8"] == pytest.approx(0.03 / 0.025)
    verdict = table["verdict"]
    # 0.43x the batch mean passes the 0.5x bar, but 1.2x the group mean is not below it.
    assert verdict["reproduces"] is False and verdict["best"] == "calibrated"
    assert "does not reproduce" in verdict["text"] and "0.43x" in verdict["text"] and "1.20x" in verdict["text"]
    text = markdown(table)
    assert "K = 16" in text and "seeds 0, 1" in text and verdict["text"] in text


def test_the_claim_reproduces_when_best_is_under_half_and_below_the_group_mean():
    better = [record(0, [point(0, 0.0, batch_mean=0.1, group_mean=0.05, prior=0.2, online=0.04),
                         point(8, 0.0, batch_mean=0.1, group_mean=0.05, prior=0.2, online=0.04)])]
    verdict = build_table(better)["verdict"]
    assert verdict["reproduces"] is True and verdict["best"] == "online"
    assert verdict["vs_batch_mean"] == pytest.approx(0.4) and verdict["vs_group_mean"] == pytest.approx(0.8)


def test_a_run_without_the_noise_or_the_diagnostic_is_refused(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "basis-seed0.json").write_text(json.dumps(record(0, [{"step": 0, "diag/value_mse/prior": 0.1}])))
    with pytest.raises(ValueError, match="basis-seed0.json: step 0 has no diag/mc_noise"):
        load_records(tmp_path)
    (runs / "basis-seed0.json").write_text(json.dumps(record(0, [])))
    with pytest.raises(ValueError, match="no diagnostic curve"):
        load_records(tmp_path)


def test_portable_replaces_machine_paths_everywhere():
    value = {"model_path": "/root/.cache/m", "uri": "sqlite:////work/x/results/mlflow.db", "n": [1, "/work/x/a"]}
    out = portable(value, [("/work/x/", ""), ("/root/", "~/")])
    assert out == {"model_path": "~/.cache/m", "uri": "sqlite:///results/mlflow.db", "n": [1, "a"]}

REFERENCE = Path(__file__).resolve().parents[2] / "results" / "reference" / "value-estimation"


def test_the_committed_value_table_is_rebuilt_from_the_committed_runs(tmp_path):
    from harness.report import write_report

    folder = tmp_path / "value-estimation"
    shutil.copytree(REFERENCE / "runs", folder / "runs")
    paths = write_value_table(folder)
    assert paths["md"].read_text() == (REFERENCE / "value-table.md").read_text()
    assert paths["csv"].read_text() == (REFERENCE / "value-table.csv").read_text()
    board = write_report("value-estimation", tmp_path, baseline=None)["md"]  # BASIS alone: no baseline
    assert board.read_text() == (REFERENCE / "leaderboard.md").read_text()
    verdict = build_table(load_records(folder))["verdict"]["text"]
    assert verdict in (REFERENCE / "README.md").read_text()  # the README states the table's verdict
    for path in (REFERENCE / "runs").glob("*.json"):  # no machine-local paths committed
        text = path.read_text()
        assert "/root/" not in text and "/work/" not in text and "/home/" not in text
