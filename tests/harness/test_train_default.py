"""`rlvr-bench train` with no --preset runs the default comparison's settings."""

import dataclasses

from harness.cli import build_parser, train_config
from harness.config import load_run_config


def test_train_without_a_preset_takes_the_default_comparisons_settings():
    """`rlvr-bench train --algorithm grpo` runs what the default comparison runs for GRPO seed 0
    (so a newcomer's first run learns visibly), in its own experiment."""
    run = train_config(build_parser().parse_args(["train", "--algorithm", "grpo"]))
    default = load_run_config("default", {"algorithm": "grpo", "seed": 0})
    assert dataclasses.replace(run, experiment=default.experiment) == default
    assert run.experiment == "train" and run.max_steps == 24 and run.samples_per_step == 256
    named = train_config(build_parser().parse_args(["train", "--experiment", "mine", "--preset", "smoke"]))
    assert named.experiment == "mine" and named.max_steps == load_run_config("smoke").max_steps
