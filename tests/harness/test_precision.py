"""Accelerator and precision settings: bf16 runs of every algorithm on the CPU, and a GPU asked
for where there is none."""

import math
import subprocess
import sys
from pathlib import Path

import lightning as L
import mlflow
import pytest
import torch

import algorithms
from harness.train import run_training


class PlacementProbe(L.Callback):
    """Records, after each training step, where the policy, the reference and the critic are."""

    def __init__(self):
        self.seen = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.seen.append({"device": module.device, "policy": next(module.policy.parameters()).dtype,
                          "reference": {p.dtype for p in module.reference.parameters()},
                          "reference_device": {p.device for p in module.reference.parameters()},
                          "critic": {p.dtype for p in module.critic.parameters()} if hasattr(module, "critic") else None})


@pytest.mark.parametrize("precision", ["bf16-mixed", "bf16-true"])
@pytest.mark.parametrize("name", algorithms.names())
def test_every_algorithm_trains_in_bf16_on_the_cpu(name, precision, make_run):
    run = make_run("smoke", algorithm=name, max_steps=2, eval_limit=4, eval_every=0, precision=precision,
                   algo={"kl_coef": 0.01})  # a KL term: every algorithm holds a reference
    probe = PlacementProbe()
    record = run_training(run, progress=False, extra_callbacks=[probe])
    assert record["summary"]["steps"] == 2 and len(probe.seen) == 2
    weights = torch.bfloat16 if precision == "bf16-true" else torch.float32
    for seen in probe.seen:
        assert seen["device"] == torch.device("cpu") and seen["reference_device"] == {torch.device("cpu")}
        assert seen["policy"] == weights
        assert seen["reference"] == {torch.bfloat16}  # kept in bf16 under both, as verl does
        assert seen["critic"] in (None, {weights})
    assert record["config"]["precision"] == precision
    history = [h for h in record["history"] if "train/loss" in h]
    assert len(history) == 2 and all(math.isfinite(h["train/loss"]) for h in history)
    mlflow.set_tracking_uri(run.tracking())
    logged = mlflow.search_runs(experiment_names=[run.experiment], output_format="list")[0]
    assert logged.data.params["precision"] == precision
    assert math.isfinite(logged.data.metrics["train/loss"]) and "eval/accuracy" in logged.data.metrics


def test_accelerator_gpu_without_a_gpu_is_one_line_naming_the_flag_and_writes_nothing(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("needs a machine without a CUDA GPU")
    out = tmp_path / "results"
    done = subprocess.run([sys.executable, "-m", "harness.cli", "train", "--preset", "smoke", "--accelerator", "gpu",
                           "--output-dir", str(out)], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert "--accelerator gpu" in lines[0] and "no CUDA GPU found" in lines[0]
    assert not out.exists()


def test_fsdp_is_refused_before_any_work_naming_the_flag(make_run):
    run = make_run("smoke", strategy="fsdp", devices=2)
    with pytest.raises(ValueError, match="--strategy fsdp"):
        run_training(run, progress=False)
    assert not Path(run.output_dir).exists()


def test_auto_takes_a_gpu_where_one_is_visible_and_too_few_gpus_name_devices(monkeypatch):
    from harness.placement import resolve_accelerator

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_accelerator("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_accelerator("auto") == "gpu" and resolve_accelerator("gpu", 2) == "gpu"
    assert resolve_accelerator("cpu", 4) == "cpu"
    with pytest.raises(ValueError, match="--devices 4 with --accelerator gpu: only 2"):
        resolve_accelerator("gpu", 4)
