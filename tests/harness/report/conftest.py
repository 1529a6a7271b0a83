"""Fixtures of the report tests: synthetic runs written to a temporary results folder."""

from __future__ import annotations

import pytest
from synthetic_runs import EXPERIMENT, synthetic_records

from harness.records import run_path, write_json_atomic


def write_runs(out):
    for record in synthetic_records():
        write_json_atomic(run_path(str(out), EXPERIMENT, record["algorithm"], record["seed"]), record)
    return out


@pytest.fixture
def synthetic_results(tmp_path):
    """An output folder holding `synth/runs/*.json`; returns the folder."""
    return write_runs(tmp_path / "results")


@pytest.fixture(scope="session")
def synthetic_report(tmp_path_factory):
    """The report of the synthetic runs (baseline grpo, target 0.33), written once per session:
    {"md", "html", "csv"} -> path."""
    from harness.report import write_report

    out = write_runs(tmp_path_factory.mktemp("report") / "results")
    return write_report(EXPERIMENT, out, baseline="grpo", target_accuracy=0.33)
