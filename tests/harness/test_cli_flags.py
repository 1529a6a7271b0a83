"""The run flags of `train`, `compare` and `sweep` come from RunConfig (fields, types, docstrings);
`--algorithm NAME --help` lists NAME's hyperparameters; `--set` keys are checked; the harness's
command line imports nothing above the harness."""

import argparse
import dataclasses
import subprocess
import sys
from dataclasses import dataclass, fields
from pathlib import Path

import pytest

import algorithms
from harness import cli, run_flags
from harness.config import RunConfig, algorithm_config, load_run_config
from harness.field_docs import field_docs, first_sentence, plain
from rlvr_bench.cli import build_parser as full_parser
from rlvr_bench.cli import main as full_main

ROOT = Path(__file__).resolve().parents[2]


def subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[command]


def flags_by_dest(p: argparse.ArgumentParser) -> dict:
    return {a.dest: a for a in p._actions if a.option_strings}


@pytest.mark.parametrize("command", ["train", "compare", "sweep"])
def test_every_run_config_field_is_a_flag_unless_listed_out_with_a_reason(command):
    flags = flags_by_dest(subparser(full_parser(), command))
    docs = field_docs(RunConfig)
    names = {f.name for f in fields(RunConfig)}
    assert set(run_flags.NOT_FLAGS) <= names, "NOT_FLAGS names a field RunConfig no longer has"
    for f in fields(RunConfig):
        if f.name in run_flags.NOT_FLAGS:
            assert f.name not in flags or f.name in ("algorithm", "seed", "algo"), f.name  # own flags; --set
            continue
        action = flags.get(f.name)
        assert action is not None, f"RunConfig.{f.name} has no flag in {command}"
        assert "--" + f.name.replace("_", "-") in action.option_strings
        assert action.default is None, f.name  # left out: the preset's value
        assert f.name in docs, f"RunConfig.{f.name} has no docstring for its --help"
        assert action.help == plain(first_sentence(docs[f.name])).replace("%", "%%")
    assert set(flags["strategy"].choices) == {"auto", "ddp", "fsdp"}
    assert set(flags["engine"].choices) == {"auto", "hf", "vllm"}


def test_a_new_run_config_field_is_a_flag_without_editing_the_command_line(monkeypatch):
    @dataclass
    class Extended(RunConfig):
        rollout_shards: int | None = None
        """Shards of a step's rollouts. More words after the first sentence."""

    monkeypatch.setattr(run_flags, "RunConfig", Extended)
    parser = cli.build_parser()
    args = parser.parse_args(["train", "--rollout-shards", "4"])
    assert run_flags.run_overrides(args)["rollout_shards"] == 4
    assert flags_by_dest(subparser(parser, "train"))["rollout_shards"].help == "Shards of a step's rollouts."

    @dataclass
    class WithMapping(RunConfig):
        reward_options: dict = dataclasses.field(default_factory=dict)

    monkeypatch.setattr(run_flags, "RunConfig", WithMapping)
    with pytest.raises(TypeError, match=r"RunConfig.reward_options: .*NOT_FLAGS"):
        cli.build_parser()


OLD_SPELLINGS = ["--task", "gsm8k", "--model", "tiny", "--engine", "hf", "--data-dir", "/data", "--steps", "7",
                 "--prompts-per-step", "4", "--samples-per-step", "32", "--eval-limit", "9", "--eval-split",
                 "validation", "--eval-every", "2", "--diag-every", "3", "--budget", "samples=64", "--experiment",
                 "e", "--output-dir", "out", "--tracking-uri", "sqlite:///x.db", "--threads", "1",
                 "--checkpoint-every", "5", "--keep-checkpoint", "--strategy", "ddp", "--devices", "2",
                 "--num-nodes", "1", "--accelerator", "cpu", "--precision", "bf16-mixed", "--no-charge-offline",
                 "--set", "lr=2e-4", "--set", "loss_agg=seq-mean-token-mean"]
# What the hand-written flags gave for them (harness/cli.py's RUN_KEYS and _run_overrides before).
OLD_OVERRIDES = {"task": "gsm8k", "model": "tiny", "engine": "hf", "data_dir": "/data", "max_steps": 7,
                 "prompts_per_step": 4, "samples_per_step": 32, "eval_limit": 9, "eval_split": "validation",
                 "eval_every": 2, "diag_every": 3, "budget": "samples=64", "experiment": "e", "output_dir": "out",
                 "tracking_uri": "sqlite:///x.db", "threads": 1, "charge_offline": False, "checkpoint_every": 5,
                 "keep_checkpoint": True, "strategy": "ddp", "devices": 2, "num_nodes": 1, "accelerator": "cpu",
                 "precision": "bf16-mixed", "algo": {"lr": 2e-4, "loss_agg": "seq-mean-token-mean"}}


@pytest.mark.parametrize("command", ["train", "compare", "sweep"])
def test_the_old_flag_spellings_give_the_same_overrides(command):
    extra = ["--algorithm", "grpo", "--trials", "1"] if command == "sweep" else []
    overrides = run_flags.run_overrides(full_parser().parse_args([command, *extra, *OLD_SPELLINGS]))
    assert {k: v for k, v in overrides.items() if v is not None} == OLD_OVERRIDES
    untouched = run_flags.run_overrides(full_parser().parse_args([command, *extra]))
    assert untouched.pop("algo") == {} and set(untouched.values()) == {None}  # the preset's values


def test_boolean_settings_go_both_ways():
    parse = cli.build_parser().parse_args
    assert parse(["train", "--charge-offline"]).charge_offline is True
    assert parse(["train", "--no-keep-checkpoint"]).keep_checkpoint is False
    assert parse(["train", "--max-steps", "3"]).max_steps == 3  # the generated spelling beside --steps


def test_a_flag_outside_its_choices_names_the_flag(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--precision", "fp16"])
    assert "--precision" in capsys.readouterr().err


def hyperparameter_lines(out: str, name: str, preset: str | None) -> None:
    """Every field of `name`'s config is in `out` with its type and its value under `preset`."""
    cls = algorithms.get(name).config_class
    config = algorithm_config(load_run_config(preset, {"algorithm": name}))
    assert f"{name} hyperparameters ({cls.__name__}; set with --set KEY=VALUE" in out
    for f in fields(cls):
        assert f"  {f.name} ({f.type}) = {getattr(config, f.name)!r}\n" in out, f.name
    for text in field_docs(cls).values():
        assert " ".join(plain(text).split()[:4]) in " ".join(out.split())


@pytest.mark.parametrize("order", ["algorithm first", "help first"])
def test_train_help_lists_every_basis_hyperparameter(order, capsys):
    argv = ["train", "--algorithm", "basis", "--help"] if order == "algorithm first" else \
        ["train", "--help", "--algorithm", "basis"]
    with pytest.raises(SystemExit) as exit_:
        full_main(argv)
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    hyperparameter_lines(out, "basis", "default")
    assert "  value_estimator (str) = 'blue'" in out and "  lr_warmup_steps (int) = 8" in out  # default.yaml's


def test_compare_and_sweep_help_list_the_named_algorithms(capsys):
    with pytest.raises(SystemExit):
        full_main(["compare", "--algorithms", "grpo", "rloo", "--preset", "smoke", "--help"])
    out = capsys.readouterr().out
    hyperparameter_lines(out, "grpo", "smoke")
    hyperparameter_lines(out, "rloo", "smoke")
    with pytest.raises(SystemExit):
        full_main(["sweep", "--algorithm", "ppo", "--help"])
    out = capsys.readouterr().out
    hyperparameter_lines(out, "ppo", None)
    assert "examples:" in out  # sweep's own epilog stays


def test_plain_help_says_how_to_list_an_algorithms_hyperparameters(capsys):
    with pytest.raises(SystemExit):
        full_main(["train", "--help"])
    out = capsys.readouterr().out
    assert "rlvr-bench train --algorithm NAME --help" in out and "basis" in out
    assert "hyperparameters (GRPOConfig" not in out  # no table of the default algorithm
    with pytest.raises(SystemExit):
        full_main(["compare", "--help"])
    assert "rlvr-bench compare --algorithms NAME --help" in capsys.readouterr().out


def test_help_for_an_unknown_algorithm_names_it(capsys):
    assert full_main(["train", "--algorithm", "nope", "--help"]) == 2
    assert "unknown algorithm 'nope'" in capsys.readouterr().err


def test_an_unknown_set_key_names_set_and_lists_the_algorithms_keys(tmp_path, capsys):
    assert cli.main(["train", "--algorithm", "basis", "--set", "bogus=1", "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--set" in err and "bogus" in err
    assert all(f.name in err for f in fields(algorithms.get("basis").config_class))
    assert cli.main(["train", "--set", "max_steps=3", "--output-dir", str(tmp_path)]) == 2
    assert "max_steps is a run setting: --steps" in capsys.readouterr().err
    assert full_main(["sweep", "--algorithm", "rloo", "--trials", "1", "--set", "scale_by_std=false",
                      "--output-dir", str(tmp_path)]) == 2
    assert "--set: rloo has no hyperparameter scale_by_std" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing started


def test_the_harness_command_line_imports_nothing_above_the_harness():
    code = ("import sys, harness.cli as c; c.build_parser(argv=['train', '--help']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sweeps', 'rlvr_bench')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    harness_sources = "\n".join(p.read_text() for p in (ROOT / "harness").rglob("*.py"))
    assert "from sweeps" not in harness_sources and "import sweeps" not in harness_sources
    def commands(parser):
        return set(next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices)

    assert commands(full_parser()) == commands(cli.build_parser()) | {"sweep"}
