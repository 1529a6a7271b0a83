"""Per-phase step time of each algorithm: where a step's seconds go.

Each algorithm runs a few RL steps under a bare Lightning Trainer (the module as
`harness.train.run_training` builds it, offline stage included but not timed), for each engine;
the table gives the median over the steps after `--warmup` of the module's own `timing_s/*`
(generate, reward, reference, old_logp, critic, update, weight_sync), their sum, and the wall
time per step. Algorithms run in their preset configuration (GRPO with groups of 8, REBEL with
pairs, ...) at the same number of samples per step.

    .venv/bin/python benchmarks/phase_times.py                       # tiny model, hf and vllm
    .venv/bin/python benchmarks/phase_times.py --model smollm2-135m  # SmolLM2-135M-Instruct on GSM8K
    .venv/bin/python benchmarks/phase_times.py --engines hf --algorithms grpo a_star_po --steps 5
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

import common  # noqa: E402

PHASES = ("generate", "reward", "reference", "old_logp", "critic", "update", "weight_sync")
DEFAULTS = {"tiny": {"samples_per_step": 64, "max_new_tokens": 32},
            "smollm2-135m": {"samples_per_step": 16, "max_new_tokens": 64}}


def measure(algorithm: str, model: str, engine: str, args) -> dict:
    sizes = DEFAULTS[model]
    samples = args.samples_per_step or sizes["samples_per_step"]
    new_tokens = args.max_new_tokens or sizes["max_new_tokens"]
    steps = args.warmup + args.steps
    run = common.run_config(algorithm, model, engine, args.threads, samples, new_tokens, steps)
    built = common.build(run)
    clock = common.bare_fit(built, steps + 1)  # one more start: the last measured step's wall time
    measured = clock.metrics[args.warmup:steps]
    walls = clock.step_seconds()[args.warmup:steps]
    row = {"algorithm": algorithm, "engine": engine, "model": model, "samples": samples, "new_tokens": new_tokens,
           "prompts": built.prompts_per_step, "steps": len(measured)}
    for phase in PHASES:
        row[phase] = common.median(m.get(f"timing_s/{phase}", 0.0) for m in measured)
    row["step"] = common.median(m["timing_s/step"] for m in measured)
    row["wall"] = common.median(walls)
    row["generated_tokens"] = common.median(m["train/response_length"] * samples for m in measured)
    return row


def print_table(rows: list[dict], model: str, engine: str, args) -> None:
    rows = [r for r in rows if r["model"] == model and r["engine"] == engine]
    if not rows:
        return
    r0 = rows[0]
    print(f"\n### {model}, engine {engine}: {r0['samples']} samples per step, up to {r0['new_tokens']} new tokens, "
          f"{args.threads} threads; median of {r0['steps']} steps after {args.warmup} warm-up\n")
    print(f"{common.load_average()}\n")
    header = ["algorithm", "prompts x samples", *PHASES, "sum of phases", "wall/step", "update share"]
    table = []
    for r in rows:
        per_prompt = r["samples"] // r["prompts"]
        table.append([r["algorithm"], f"{r['prompts']} x {per_prompt}",
                      *[f"{r[p]:.3f}" if r[p] else "-" for p in PHASES],
                      f"{r['step']:.3f}", f"{r['wall']:.3f}", f"{r['update'] / r['step']:.0%}"])
    print(common.markdown_table(header, table))
    print("\nSeconds per step.")


def main() -> None:
    import algorithms

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", choices=sorted(common.MODELS))
    parser.add_argument("--engines", nargs="+", default=["hf", "vllm"], choices=["hf", "vllm"])
    parser.add_argument("--algorithms", nargs="+", default=algorithms.names(), choices=algorithms.names())
    parser.add_argument("--steps", type=int, default=4, help="measured steps per algorithm")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--samples-per-step", type=int, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args()
    rows = []
    for engine in args.engines:
        for algorithm in args.algorithms:
            rows.append(measure(algorithm, args.model, engine, args))
            print(f"[{engine}] {algorithm}: {rows[-1]['step']:.3f} s/step", flush=True)
    for engine in args.engines:
        print_table(rows, args.model, engine, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
