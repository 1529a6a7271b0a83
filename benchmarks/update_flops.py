"""The update phase's achieved FLOP rate against the fp32 matrix-multiply rate of this machine.

Achieved rate = 6 x parameters x train tokens / update seconds (the budget's estimate, as
`harness.budget`: every token of every trained sequence, prompt included, forward and backward),
from the module's `timing_s/update` and its `train_tokens` counter, over the steps after
`--warmup` of a GRPO run under a bare Lightning Trainer. The reference is `torch.mm` of two
`--matmul-size` square fp32 matrices with the same number of threads, measured in the same
process before and after each model's steps (median of the repeats).

A second column counts the FLOPs the update really has to do: the transformer body on every
token, the LM head only on response tokens (the trainer asks the model for response logits only),
embeddings as lookups: 6 x (parameters - vocabulary x hidden) x tokens + 6 x vocabulary x hidden x
response tokens. The target of the issue is the first figure.

    .venv/bin/python benchmarks/update_flops.py                          # tiny and SmolLM2-135M
    .venv/bin/python benchmarks/update_flops.py --models tiny --steps 6
"""

from __future__ import annotations

import argparse
import os
import time

import common

DEFAULTS = {"tiny": {"samples_per_step": 64, "max_new_tokens": 32},
            "smollm2-135m": {"samples_per_step": 16, "max_new_tokens": 32}}


def matmul_rate(size: int, repeats: int, threads: int) -> float:
    """fp32 FLOP/s of `torch.mm` on two size x size matrices (median of `repeats`, after a warm-up)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return 2.0 * size**3 / common.median(times)


def measure(model: str, args) -> dict:
    sizes = DEFAULTS[model]
    samples = args.samples_per_step or sizes["samples_per_step"]
    new_tokens = args.max_new_tokens or sizes["max_new_tokens"]
    steps = args.warmup + args.steps
    rates = [matmul_rate(args.matmul_size, args.matmul_repeats, args.threads)]
    run = common.run_config(args.algorithm, model, "hf", args.threads, samples, new_tokens, steps)
    built = common.build(run)
    policy = built.module.policy
    vocab, hidden = policy.config.vocab_size, policy.config.hidden_size
    clock = common.bare_fit(built, steps)
    rates.append(matmul_rate(args.matmul_size, args.matmul_repeats, args.threads))
    achieved, model_rates, seconds, tokens = [], [], [], []
    previous = {"train_tokens": 0}
    # One epoch, one mini-batch (the presets): each sample's response is trained once per step.
    for index, (metrics, counters) in enumerate(zip(clock.metrics, clock.counters)):
        train_tokens = counters["train_tokens"] - previous["train_tokens"]
        previous = counters
        if index < args.warmup:
            continue
        update = metrics["timing_s/update"]
        response_tokens = metrics["train/response_length"] * samples
        flops = 6.0 * built.parameters * train_tokens
        body = 6.0 * (built.parameters - vocab * hidden) * train_tokens + 6.0 * vocab * hidden * response_tokens
        achieved.append(flops / update)
        model_rates.append(body / update)
        seconds.append(update)
        tokens.append(train_tokens)
    return {"model": model, "parameters": built.parameters, "samples": samples, "new_tokens": new_tokens,
            "tokens": common.median(tokens), "update_s": common.median(seconds),
            "achieved": common.median(achieved), "model_rate": common.median(model_rates),
            "matmul": common.median(rates), "matmul_runs": rates, "steps": len(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny", "smollm2-135m"], choices=sorted(common.MODELS))
    parser.add_argument("--algorithm", default="grpo")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--samples-per-step", type=int, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--matmul-repeats", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    before = common.load_average()
    rows = [measure(model, args) for model in args.models]
    print(f"\n### Update-phase FLOP rate ({args.algorithm}, HF engine, {args.threads} threads) vs fp32 torch.mm "
          f"{args.matmul_size}x{args.matmul_size}\n")
    print(f"Before: {before}; after: {common.load_average()}\n")
    table = []
    for r in rows:
        table.append([r["model"], f"{r['parameters'] / 1e6:.1f}M", f"{r['samples']} x <= {r['new_tokens']}",
                      f"{r['tokens']:.0f}", f"{r['update_s']:.3f}", f"{r['achieved'] / 1e9:.1f}",
                      f"{r['model_rate'] / 1e9:.1f}",
                      f"{r['matmul'] / 1e9:.1f} ({', '.join(f'{x / 1e9:.0f}' for x in r['matmul_runs'])})",
                      f"**{r['achieved'] / r['matmul']:.0%}**", f"{r['model_rate'] / r['matmul']:.0%}"])
    print(common.markdown_table(["model", "params", "samples x new tokens", "train tokens/step", "update s",
                                 "6N GFLOP/s", "model GFLOP/s", "matmul GFLOP/s (before, after)",
                                 "6N / matmul", "model / matmul"], table))
    print(f"\nMedians over {rows[0]['steps']} steps after {args.warmup} warm-up. Target: 6N / matmul >= 40 % on SmolLM2-135M.")


if __name__ == "__main__":
    main()
