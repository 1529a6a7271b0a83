"""`compare` with DDP runs (each its own command line, so Lightning's re-launch of rank 1 runs that
run, not a second comparison) and the GPU slots of its workers."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.compare import gpu_slots, launches_processes, train_command
from harness.config import load_run_config


def test_a_two_run_ddp_grid_completes_on_the_cpu(tiny_model_dir, tmp_path):
    out = tmp_path / "results"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run([sys.executable, "-m", "harness.cli", "compare", "--preset", "smoke", "--strategy", "ddp",
                           "--devices", "2", "--algorithms", "grpo", "basis", "--seeds", "0", "--steps", "2",
                           "--eval-limit", "8", "--model", str(tiny_model_dir), "--output-dir", str(out)],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "failed" not in done.stdout + done.stderr
    for algorithm in ("grpo", "basis"):
        record = json.loads((out / "smoke" / "runs" / f"{algorithm}-seed0.json").read_text())
        assert record["summary"]["processes_in_training_step"] == 2
        assert record["summary"]["parameters_in_sync"] is True
        # Its rank 0 reported every step to the comparison's display through its progress file.
        progress = json.loads((out / "smoke" / "launch" / f"{algorithm}-seed0.progress.json").read_text())
        assert progress["key"] == [algorithm, 0] and progress["step"] == 2
    assert (out / "smoke" / "leaderboard.md").exists()
    # One compare: its summary table printed once.
    assert done.stdout.count("| algorithm |") == 1


def test_a_ddp_runs_command_line_carries_the_comparisons_tags_and_progress_file(tmp_path):
    from harness.cli import build_parser, run_tags

    run = load_run_config("smoke", {"strategy": "ddp", "devices": 2, "algorithm": "basis", "seed": 3,
                                    "output_dir": str(tmp_path)})
    command = train_command(run, resume=True, tags={"mlflow.parentRunId": "abc123", "note": "a=b"},
                            progress_file=tmp_path / "p.json")
    args = build_parser().parse_args(command[3:])  # after `python -m harness.cli`
    assert (args.algorithm, args.seed, args.resume) == ("basis", 3, True)
    assert run_tags(args.tag) == {"mlflow.parentRunId": "abc123", "note": "a=b"}
    assert args.progress_file == str(tmp_path / "p.json")
    with pytest.raises(ValueError, match="--tag 'nokey'"):
        run_tags(["nokey"])


def test_ddp_runs_are_launched_as_command_lines():
    assert launches_processes(load_run_config("smoke", {"strategy": "ddp", "devices": 2}))
    assert not launches_processes(load_run_config("smoke", {}))


def test_gpu_slots_give_each_worker_its_own_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,6,7")
    assert gpu_slots(workers=4, per_run=2) == [["3", "5"], ["6", "7"]]
    assert gpu_slots(workers=1, per_run=2) == [["3", "5"]]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert gpu_slots(workers=8, per_run=1) == [["0"], ["1"], ["2"], ["3"]]
    with pytest.raises(ValueError, match="--devices 8"):
        gpu_slots(workers=1, per_run=8)
