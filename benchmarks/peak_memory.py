"""Peak memory of each algorithm in the default comparison's setting: max RSS and peak live heap.

Each algorithm runs `--steps` RL steps of the `default` preset (its sizes, its offline stage,
its evaluations before and after) through `harness.train.run_training`, each in a fresh process
with `--threads` torch threads, once per seed in `--seeds`, and the table gives the medians over
seeds of the run's `perf/max_rss_gb` (what the kernel counts: live memory plus what the allocator
freed and kept), with its range, and of `perf/peak_heap_gb` (what malloc has handed out and not
taken back: `harness.heap`), and of the median step, generation and update seconds. What glibc
keeps depends on the order of a process's allocations: the same run's max RSS moved by 5 % with
nothing but an extra module imported first (GRPO 0.963 -> 0.916 GB, 2026-11-24), so one run per
algorithm cannot rank max RSS within a few percent; several seeds show the spread. `--set`
changes an algorithm setting for every run; `--engine-option` replaces the preset's engine
options. The preset's settings before issue 10's memory work: `--set micro_batch_tokens=0
--engine-option prefill_rows=0` (micro-batches of 64 samples, one prefill for all prompts).

    .venv/bin/python benchmarks/peak_memory.py                       # default preset, 3 steps, seeds 0 1 2
    .venv/bin/python benchmarks/peak_memory.py --algorithms grpo a_star_po --set micro_batch_tokens=0 --engine-option prefill_rows=0
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

import common

import algorithms

ALGORITHMS = tuple(algorithms.names())  # every registered algorithm


def worker(args) -> None:
    from harness.cli import key_values
    from harness.config import load_run_config
    from harness.train import run_training

    overrides = {"algorithm": args.worker, "seed": args.seeds[0], "threads": args.threads, "max_steps": args.steps,
                 "eval_every": 0, "checkpoint_every": 0, "experiment": "peak-memory", "output_dir": args.output_dir,
                 "algo": key_values(args.set)}
    if args.engine_option:  # replaces the preset's engine options
        overrides["engine_options"] = key_values(args.engine_option, "--engine-option")
    run = load_run_config("default", overrides)
    record = run_training(run, log=lambda *_: None, progress=False)
    final = record["final_metrics"]
    steps = [h for h in record["history"] if "timing_s/step" in h]
    print(json.dumps({"max_rss_gb": final["perf/max_rss_gb"], "peak_heap_gb": final.get("perf/peak_heap_gb"),
                      "step_s": common.median(h["timing_s/step"] for h in steps),
                      "generate_s": common.median(h["timing_s/generate"] for h in steps),
                      "update_s": common.median(h["timing_s/update"] for h in steps)}))


def run_worker(algorithm: str, seed: int, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="rlvr-peak-") as out:
        command = [sys.executable, __file__, "--worker", algorithm, "--output-dir", out, "--steps", str(args.steps),
                   "--threads", str(args.threads), "--seeds", str(seed)]
        command += [f"--set={s}" for s in args.set] + [f"--engine-option={s}" for s in args.engine_option]
        done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{algorithm} (seed {seed}): the run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), choices=ALGORITHMS)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="the comparison runs each run on one thread")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="a run per seed and algorithm; the table gives medians (max RSS: and the range)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an algorithm setting")
    p.add_argument("--engine-option", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--output-dir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)

    print(f"# default preset, {args.steps} steps, {args.threads} thread(s), seeds {' '.join(map(str, args.seeds))}; "
          f"settings: {' '.join(args.set + args.engine_option) or 'as the preset'}; {common.load_average()}")
    print("| algorithm | max RSS GB (median) | range over seeds | RSS vs GRPO | peak live heap GB | heap vs GRPO "
          "| s/step | generate s | update s |")
    print("|---|---|---|---|---|---|---|---|---|")
    medians = {}
    for algorithm in args.algorithms:
        runs = [run_worker(algorithm, seed, args) for seed in args.seeds]
        medians[algorithm] = row = {key: common.median(r[key] for r in runs) if runs[0][key] is not None else None
                                    for key in runs[0]}
        base = medians.get("grpo", {})

        def against(key):
            return f"{row[key] / base[key]:.2f}" if base.get(key) and row[key] else "-"

        rss = [r["max_rss_gb"] for r in runs]
        heap = f"{row['peak_heap_gb']:.3f}" if row["peak_heap_gb"] is not None else "-"
        print(f"| {algorithm} | {row['max_rss_gb']:.3f} | {min(rss):.3f}-{max(rss):.3f} | {against('max_rss_gb')} | {heap} "
              f"| {against('peak_heap_gb')} | {row['step_s']:.2f} | {row['generate_s']:.2f} | {row['update_s']:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
