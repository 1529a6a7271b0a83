"""`rlvr-bench`: pretrain | train | compare."""

from __future__ import annotations

import argparse
import sys

import yaml

from harness.compare import RunFailed
from harness.config import EVAL_SPLITS
from harness.tracking import TrackingUnreachable


def _parse_value(text: str):
    """Numbers as numbers (YAML 1.1 reads `1e-3` as a string), else as YAML reads them."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return yaml.safe_load(text)


def key_values(pairs: list[str] | None, flag: str = "--set") -> dict:
    """{KEY: value} from repeated `flag KEY=VALUE` arguments (values as `_parse_value` reads them)."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"{flag} {pair!r}: expected KEY=VALUE")
        out[key] = _parse_value(value)
    return out


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", help="experiment preset name (see harness/presets) or a YAML path "
                                     "(train and compare: default, the default comparison's settings)")
    p.add_argument("--task", help="task name (tasks.names())")
    p.add_argument("--model", help="tiny | smollm2-135m | local HF folder | hub id")
    p.add_argument("--engine", choices=["auto", "hf", "vllm"], help="rollout engine (auto: vllm where installed)")
    p.add_argument("--data-dir", dest="data_dir", help="local benchmark data folder (else $RLVR_DATA_DIR, else the hub)")
    p.add_argument("--steps", dest="max_steps", type=int, help="RL steps")
    p.add_argument("--prompts-per-step", dest="prompts_per_step", type=int)
    p.add_argument("--samples-per-step", dest="samples_per_step", type=int,
                   help="prompts per step = this / the algorithm's samples per prompt")
    p.add_argument("--eval-limit", dest="eval_limit", type=int, help="held-out prompts evaluated")
    p.add_argument("--eval-split", dest="eval_split", choices=list(EVAL_SPLITS),
                   help="held-out examples: test, or validation carved from the train split (sweeps: always validation)")
    p.add_argument("--eval-every", dest="eval_every", type=int, help="evaluate every N steps (0: before/after only)")
    p.add_argument("--diag-every", dest="diag_every", type=int,
                   help="value-estimation diagnostic at step 0 and every N steps (0: off; not charged)")
    p.add_argument("--budget", help="KIND=LIMIT with KIND samples|tokens|flops|seconds")
    p.add_argument("--experiment", help="MLflow experiment name")
    p.add_argument("--output-dir", dest="output_dir", help="folder for results/<experiment>/runs and the default MLflow store")
    p.add_argument("--tracking-uri", dest="tracking_uri", help="MLflow tracking URI (default: SQLite under the output folder)")
    p.add_argument("--threads", type=int, help="torch threads")
    p.add_argument("--checkpoint-every", dest="checkpoint_every", type=int,
                   help="checkpoint every N steps and at the end (0: only at the end)")
    p.add_argument("--keep-checkpoint", dest="keep_checkpoint", action="store_const", const=True,
                   help="keep the last checkpoint after the run's record is written (to extend it with --resume)")
    p.add_argument("--strategy", choices=["auto", "ddp", "fsdp"], help="Lightning strategy (ddp/fsdp: several processes)")
    p.add_argument("--devices", type=int, help="processes per node under ddp/fsdp")
    p.add_argument("--num-nodes", dest="num_nodes", type=int, help="nodes under ddp/fsdp")
    p.add_argument("--accelerator", choices=["auto", "cpu", "gpu"], help="Lightning accelerator (auto: a GPU if one is visible)")
    p.add_argument("--precision", choices=["32-true", "bf16-mixed", "bf16-true"],
                   help="Lightning precision (bf16-mixed: fp32 weights, bf16 autocast; bf16-true: bf16 weights)")
    p.add_argument("--no-charge-offline", dest="charge_offline", action="store_const", const=False,
                   help="report offline stages (A*-PO stage 1, BASIS prior) apart instead of charging the budget")
    p.add_argument("--set", dest="algo", action="append", metavar="KEY=VALUE",
                   help="override an algorithm hyperparameter, e.g. --set lr=2e-4 (repeatable)")


def _add_plan_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", dest="dry_run", action="store_true",
                   help="print the runs, devices, precision, engine options and a per-GPU memory plan; run nothing")
    p.add_argument("--gpu-memory-gb", dest="gpu_memory_gb", type=float,
                   help="GPU memory the --dry-run plan is checked against (default: the device's, else 80)")


def _run_overrides(args, keys) -> dict:
    values = {k: getattr(args, k, None) for k in keys}
    values["algo"] = key_values(args.algo)
    return values


RUN_KEYS = ("task", "model", "engine", "data_dir", "max_steps", "prompts_per_step", "samples_per_step", "eval_limit", "eval_split", "eval_every",
            "diag_every", "budget", "experiment", "output_dir", "tracking_uri", "threads", "charge_offline",
            "checkpoint_every", "keep_checkpoint", "strategy", "devices", "num_nodes", "accelerator", "precision")


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

    overrides = _run_overrides(args, RUN_KEYS)
    overrides.update(algorithm=args.algorithm, seed=args.seed)
    if not args.preset:
        overrides["experiment"] = overrides.get("experiment") or "train"
    return load_run_config(args.preset or "default", overrides)


def cmd_train(args) -> int:
    from harness.train import run_training

    run = train_config(args)
    if args.dry_run:
        return _dry_run([run], args)
    record = run_training(run, resume=args.resume)
    if record.get("global_rank", 0) != 0:  # under DDP every process returns; one summary line
        return 0
    s = record["summary"]
    print(f"{run.algorithm} seed {run.seed}: held-out accuracy {s['accuracy_before']:.3f} -> "
          f"{s['accuracy_after']:.3f} in {s['steps']} steps, {s['wall_s']:.0f}s")
    return 0


def cmd_compare(args) -> int:
    from harness.compare import run_comparison

    overrides = _run_overrides(args, RUN_KEYS)
    if args.dry_run:
        from harness.compare import grid
        from harness.config import load_run_config

        names, seeds = grid(args.preset or "default", args.algorithms, args.seeds)
        return _dry_run([load_run_config(args.preset or "default", {**overrides, "algorithm": name, "seed": seed})
                         for name in names for seed in seeds], args)
    run_comparison(args.preset or "default", overrides, algorithms=args.algorithms, seeds=args.seeds,
                   workers=args.workers)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlvr-bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pretrain", help="the shipped tiny warm start: its sha1 and pass@1 (--rebuild: build it here and compare)")
    p.add_argument("--rebuild", action="store_true",
                   help="build the warm start on this machine (a few CPU minutes) and say whether it matches the shipped bytes")
    p.add_argument("--preset", default="default", help="the comparison whose held-out set and sampling the pass@1 uses")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("train", help="train one algorithm with one seed; evaluate before and after")
    p.add_argument("--algorithm", default="grpo",
                   help="a registered name (algorithms.names(): a file in algorithms/ or an entry point of "
                        "the group rlvr_bench.algorithms) or package.module:ClassName")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true",
                   help="continue from the run's last checkpoint (results/<experiment>/checkpoints), if any")
    _add_run_flags(p)
    _add_plan_flags(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("compare", help="algorithms x seeds on one task, model and budget (default: the embedded experiment)")
    p.add_argument("--algorithms", nargs="+", help="subset of algorithms (default: the preset's)")
    p.add_argument("--seeds", nargs="+", type=int, help="seeds (default: the preset's)")
    p.add_argument("--workers", type=int, help="runs at a time, side by side, each on its own share of the cores "
                                                "(default: the preset's compare.workers, else 1)")
    _add_run_flags(p)
    _add_plan_flags(p)
    p.set_defaults(func=cmd_compare)

    from sweeps.cli import add_sweep_parser

    add_sweep_parser(sub, _add_run_flags)

    from harness.report.cli import add_parser as add_report_parser

    add_report_parser(sub)

    from harness.eval_command import add_eval_parser

    add_eval_parser(sub)

    from harness.value_table import add_value_table_parser

    add_value_table_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, TrackingUnreachable, RunFailed) as err:
        print(f"rlvr-bench {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
