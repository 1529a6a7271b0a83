"""`rlvr-bench`: pretrain | train | compare | report | eval | value-table (the harness's commands;
`rlvr-bench` itself, rlvr_bench/cli.py, adds sweep)."""

from __future__ import annotations

import argparse
import sys

from harness.compare import RunFailed
from harness.run_flags import add_run_flags, check_set_keys, key_values, run_overrides
from harness.tracking import TrackingUnreachable

__all__ = ["COMMANDS", "build_parser", "main", "key_values", "train_config"]  # key_values: benchmarks/peak_memory.py


def _add_plan_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", dest="dry_run", action="store_true",
                   help="print the runs, devices, precision, engine options and a per-GPU memory plan; run nothing")
    p.add_argument("--gpu-memory-gb", dest="gpu_memory_gb", type=float,
                   help="GPU memory the --dry-run plan is checked against (default: the device's, else 80)")


def _dry_run(runs: list, args) -> int:
    from harness.memory_plan import dry_run

    return 0 if dry_run(runs, args.gpu_memory_gb) else 1


def cmd_pretrain(args) -> int:
    from harness.pretrain import pretrain_and_report

    pretrain_and_report(rebuild=args.rebuild, preset=args.preset)
    return 0


def train_config(args):
    """`train`'s RunConfig: with no --preset, the default comparison's settings (a newcomer's first
    run learns visibly), in an experiment of its own (`train`) unless --experiment names one."""
    from harness.config import load_run_config

    overrides = run_overrides(args)
    check_set_keys(overrides["algo"], [args.algorithm])
    overrides.update(algorithm=args.algorithm, seed=args.seed)
    if not args.preset:
        overrides["experiment"] = overrides.get("experiment") or "train"
    return load_run_config(args.preset or "default", overrides)


def cmd_train(args) -> int:
    from harness.train import run_training

    run = train_config(args)
    if args.dry_run:
        return _dry_run([run], args)
    callbacks = []
    if args.progress_file:
        from harness.progress import ProgressCallback, ProgressFile

        callbacks.append(ProgressCallback(ProgressFile(args.progress_file), (run.algorithm, run.seed)))
    record = run_training(run, resume=args.resume, extra_tags=run_tags(args.tag), extra_callbacks=callbacks)
    if record.get("global_rank", 0) != 0:  # under DDP every process returns; one summary line
        return 0
    s = record["summary"]
    print(f"{run.algorithm} seed {run.seed}: held-out accuracy {s['accuracy_before']:.3f} -> "
          f"{s['accuracy_after']:.3f} in {s['steps']} steps, {s['wall_s']:.0f}s")
    return 0


def run_tags(pairs: list[str] | None) -> dict:
    """{KEY: VALUE} of repeated `--tag KEY=VALUE` (values are strings, as MLflow's tags are)."""
    return key_values(pairs, "--tag", raw=True)


def cmd_compare(args) -> int:
    from harness.compare import grid, run_comparison

    overrides = run_overrides(args)
    names, seeds = grid(args.preset or "default", args.algorithms, args.seeds)
    check_set_keys(overrides["algo"], names)
    if args.dry_run:
        from harness.config import load_run_config

        return _dry_run([load_run_config(args.preset or "default", {**overrides, "algorithm": name, "seed": seed})
                         for name in names for seed in seeds], args)
    run_comparison(args.preset or "default", overrides, algorithms=args.algorithms, seeds=args.seeds,
                   workers=args.workers)
    return 0


def add_pretrain_parser(sub) -> None:
    p = sub.add_parser("pretrain", help="the shipped tiny warm start: its sha1 and pass@1 (--rebuild: build it here and compare)")
    p.add_argument("--rebuild", action="store_true",
                   help="build the warm start on this machine (a few CPU minutes) and say whether it matches the shipped bytes")
    p.add_argument("--preset", default="default", help="the comparison whose held-out set and sampling the pass@1 uses")
    p.set_defaults(func=cmd_pretrain)


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train one algorithm with one seed; evaluate before and after")
    p.add_argument("--algorithm", default="grpo",
                   help="a registered name (algorithms.names(): a file in algorithms/ or an entry point of "
                        "the group rlvr_bench.algorithms) or package.module:ClassName")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true",
                   help="continue from the run's last checkpoint (results/<experiment>/checkpoints), if any")
    p.add_argument("--tag", action="append", metavar="KEY=VALUE",
                   help="a tag of the run's MLflow run (repeatable); compare nests its DDP runs with mlflow.parentRunId")
    # compare's display of a DDP run: its rank 0 rewrites this file after every step.
    p.add_argument("--progress-file", dest="progress_file", help=argparse.SUPPRESS)
    _add_plan_flags(p)
    add_run_flags(p)
    p.set_defaults(func=cmd_train)


def add_compare_parser(sub) -> None:
    p = sub.add_parser("compare", help="algorithms x seeds on one task, model and budget (default: the embedded experiment)")
    p.add_argument("--algorithms", nargs="+", help="subset of algorithms (default: the preset's)")
    p.add_argument("--seeds", nargs="+", type=int, help="seeds (default: the preset's)")
    p.add_argument("--workers", type=int, help="runs at a time, side by side, each on its own share of the cores "
                                                "(default: the preset's compare.workers, else 1)")
    _add_plan_flags(p)
    add_run_flags(p)
    p.set_defaults(func=cmd_compare)


def add_report_parser(sub) -> None:
    from harness.report.cli import add_parser

    add_parser(sub)


def add_eval_parser(sub) -> None:
    from harness.eval_command import add_eval_parser as add

    add(sub)


def add_value_table_parser(sub) -> None:
    from harness.value_table import add_value_table_parser as add

    add(sub)


# The harness's subcommands, in `--help` order: each a function adding its parser to the subparsers.
# `rlvr-bench` (rlvr_bench/cli.py) adds the layers above the harness (sweep); the harness imports none of them.
COMMANDS = (add_pretrain_parser, add_train_parser, add_compare_parser, add_report_parser, add_eval_parser,
            add_value_table_parser)


def build_parser(commands=COMMANDS, argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser of `commands`; when `argv` asks for a subcommand's --help, that help lists the
    hyperparameters of the algorithm(s) it names (harness/hyperparameter_help.py)."""
    parser = argparse.ArgumentParser(prog="rlvr-bench", description="RL with verifiable rewards on LLM math "
                                     "reasoning; `rlvr-bench COMMAND --help` lists a command's flags")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in commands:
        add(sub)
    from harness.hyperparameter_help import add_hyperparameter_help, help_request

    request = help_request(argv or [])
    if request and hasattr(sub.choices.get(request[0]), "default_preset"):  # a command with run flags
        add_hyperparameter_help(sub.choices[request[0]], *request)
    return parser


def main(argv: list[str] | None = None, commands=COMMANDS) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[0] if argv and not argv[0].startswith("-") else ""
    try:
        args = build_parser(commands, argv).parse_args(argv)
        return args.func(args)
    except (ValueError, FileNotFoundError, TrackingUnreachable, RunFailed) as err:
        print(f"rlvr-bench {command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
