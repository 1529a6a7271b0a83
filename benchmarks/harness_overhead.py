"""Harness overhead: step time with telemetry, budget and MLflow logging on against off.

On: `harness.train.run_training` (telemetry and budget callbacks, the stop callback, MLflow
logging to a SQLite store, checkpoint callback; evaluation only before and after training, so
outside the steps). Off: the same module built the same way, driven by a bare Lightning Trainer
with no logger and none of our callbacks. Runs alternate on/off for `--rounds` rounds in one
process.

Two figures per side, medians over the steps after `--warmup`: the wall time per step (from one
step's start to the next one's) and the part of it outside the module's timed phases (wall time
minus the sum of `timing_s/*`): Lightning's loop, callbacks and logging. The overhead is the
difference of the outside parts over the off side's wall time per step; the difference of the
wall times is printed too, but on a shared machine it is mostly noise.

    .venv/bin/python benchmarks/harness_overhead.py                    # GRPO, tiny model
    .venv/bin/python benchmarks/harness_overhead.py --algorithm a_star_po --rounds 3 --steps 8
"""

from __future__ import annotations

import argparse
import tempfile

import common


def run_on(args, out_dir: str) -> common.StepClock:
    from harness.train import run_training

    run = common.run_config(args.algorithm, args.model, "hf", args.threads, args.samples_per_step,
                            args.max_new_tokens, args.warmup + args.steps + 1, output_dir=out_dir)
    clock = common.StepClock()
    run_training(run, log=lambda *_: None, progress=False, extra_callbacks=[clock])
    return clock


def run_off(args, out_dir: str) -> common.StepClock:
    steps = args.warmup + args.steps + 1
    run = common.run_config(args.algorithm, args.model, "hf", args.threads, args.samples_per_step,
                            args.max_new_tokens, steps, output_dir=out_dir)
    return common.bare_fit(common.build(run), steps, seed=run.seed)


def summarise(clock: common.StepClock, warmup: int) -> tuple[list[float], list[float]]:
    walls = clock.step_seconds()[warmup:]
    phases = [m["timing_s/step"] for m in clock.metrics[warmup:warmup + len(walls)]]
    return walls, [w - p for w, p in zip(walls, phases)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithm", default="grpo")
    parser.add_argument("--model", default="tiny", choices=sorted(common.MODELS))
    parser.add_argument("--samples-per-step", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    before = common.load_average()
    walls = {"on": [], "off": []}
    outside = {"on": [], "off": []}
    with tempfile.TemporaryDirectory(prefix="harness-overhead-") as out_dir:
        for round_index in range(args.rounds):
            for side, fn in (("on", run_on), ("off", run_off)):
                w, o = summarise(fn(args, out_dir), args.warmup)
                walls[side] += w
                outside[side] += o
                print(f"round {round_index + 1} {side}: wall {common.median(w):.3f} s/step, "
                      f"outside phases {common.median(o) * 1000:.1f} ms/step", flush=True)
    on_wall, off_wall = common.median(walls["on"]), common.median(walls["off"])
    on_out, off_out = common.median(outside["on"]), common.median(outside["off"])
    print(f"\n### Harness overhead: {args.algorithm} on {args.model}, {args.samples_per_step} samples per step, "
          f"up to {args.max_new_tokens} new tokens, {args.threads} threads, HF engine; "
          f"{args.rounds} rounds on/off x {args.steps} steps\n")
    print(f"Before: {before}; after: {common.load_average()}\n")
    rows = [["on (run_training: telemetry, budget, MLflow)", len(walls["on"]), f"{on_wall:.3f}", f"{on_out * 1000:.1f}"],
            ["off (bare Lightning Trainer)", len(walls["off"]), f"{off_wall:.3f}", f"{off_out * 1000:.1f}"]]
    print(common.markdown_table(["side", "steps", "median wall s/step", "median outside phases ms/step"], rows))
    print(f"\nOverhead (outside-phase time on - off) / wall off: **{(on_out - off_out) / off_wall:.1%}** (target <= 3 %); "
          f"difference of median wall times: {(on_wall - off_wall) / off_wall:+.1%} (noise-dominated)")


if __name__ == "__main__":
    main()
