"""`rlvr-bench sweep`: tune one algorithm with Optuna at a fixed budget."""

from __future__ import annotations

import argparse

from harness.run_flags import add_run_flags, check_set_keys, run_overrides

EPILOG = """examples:
  rlvr-bench sweep --algorithm grpo --trials 8 --preset smoke --budget samples=256
  rlvr-bench sweep --algorithm grpo --trials 8 --resume --export tuned.yaml   # then: rlvr-bench compare --preset tuned.yaml
  # several workers, on one machine or many: the same command against one RDB storage and tracking server
  rlvr-bench sweep --algorithm grpo --trials 32 --resume --study grpo-a --storage postgresql+psycopg2://user@host/db \\
      --tracking-uri http://host:5000
"""


def add_sweep_parser(sub) -> None:
    p = sub.add_parser("sweep", help="tune one algorithm's hyperparameters with Optuna at a fixed budget",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algorithm", required=True, help="algorithms.names()")
    p.add_argument("--trials", type=int, required=True,
                   help="complete trials the study must reach, over all workers (pruned and failed ones do not count)")
    p.add_argument("--study", help="study name (default: <algorithm>-<experiment>)")
    p.add_argument("--storage", help="Optuna RDB URL, e.g. postgresql+psycopg2://user@host/db "
                                     "(default: SQLite under <output-dir>/sweeps/optuna.db)")
    p.add_argument("--resume", action="store_true", help="continue an existing study, or join it as another worker")
    p.add_argument("--multi-objective", action="store_true",
                   help="accuracy up and budget seconds down (NSGA-II); writes the Pareto front as CSV and PNG")
    p.add_argument("--export", metavar="PATH", help="write/update a preset with the best trial under per_algorithm.<algorithm>")
    p.add_argument("--space", metavar="PATH", help="search space YAML (default: sweeps/spaces/<algorithm>.yaml)")
    p.add_argument("--seed", type=int, default=0, help="training seed of every trial and the sampler's seed")
    p.add_argument("--no-baseline", dest="baseline", action="store_false",
                   help="do not enqueue the preset's hyperparameters as trial 0 (the untuned reference)")
    p.add_argument("--pruner", choices=["median", "none"], default="median", help="pruning on intermediate evaluations")
    p.add_argument("--pruner-startup-trials", type=int, default=2, help="trials before the pruner may prune")
    p.add_argument("--startup-trials", type=int, help="random trials before TPE (default: trials / 3, 2 to 10)")
    p.add_argument("--heartbeat", type=int, default=10, help="seconds between a running trial's heartbeats")
    p.add_argument("--grace", type=int, default=60, help="seconds without heartbeat before a trial counts as dead")
    p.add_argument("--max-retry", type=int, default=2, help="retries of a trial whose worker died")
    add_run_flags(p, default_preset=None)
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args) -> int:
    import dataclasses

    from harness.config import load_run_config
    from sweeps.export import best_trial, export_preset, write_pareto, write_trials
    from sweeps.study import SweepSettings, run_sweep, sweep_dir

    settings = SweepSettings(
        algorithm=args.algorithm, trials=args.trials, study=args.study, storage=args.storage, resume=args.resume,
        multi_objective=args.multi_objective, space=args.space, seed=args.seed, baseline=args.baseline, pruner=args.pruner,
        pruner_startup_trials=args.pruner_startup_trials, startup_trials=args.startup_trials,
        heartbeat_s=args.heartbeat, grace_s=args.grace, max_retry=args.max_retry)
    if args.eval_split == "test":
        raise ValueError("--eval-split test: a sweep scores its trials on the validation split carved from the "
                         "train split, so that the tuned comparison's test accuracy is not tuned on; leave the flag out")
    overrides = run_overrides(args)
    check_set_keys(overrides["algo"], [args.algorithm])
    overrides.update(algorithm=args.algorithm, seed=args.seed)
    run = load_run_config(args.preset, overrides)
    if not args.experiment:  # keep trials out of the comparison's experiment
        run = dataclasses.replace(run, experiment=f"{run.experiment}-sweep")
    study = run_sweep(settings, run, preset=args.preset)
    folder = sweep_dir(run, study.study_name)
    print(f"sweep: trials table {write_trials(study, folder)}")
    if settings.multi_objective:
        csv_path, png_path = write_pareto(study, folder)
        print(f"sweep: Pareto front {csv_path} and {png_path}")
    best = best_trial(study)
    baseline = [t for t in study.trials if t.user_attrs.get("baseline") and t.values]
    if baseline:
        print(f"sweep: baseline (preset values, trial {baseline[0].number}): objective(s) {baseline[0].values}")
    print(f"sweep: best trial {best.number}: objective(s) {best.values} params {best.params}")
    if args.export:
        print(f"sweep: tuned preset {export_preset(study, args.export)} "
              f"(run it: rlvr-bench compare --preset {args.export})")
    return 0
