"""HF generation two ways, alternating: with the lean Llama decoding step
(`harness/engines/llama_decode.py`) against decoding through the model's forward (`--compare
lean`: the same rollouts, bitwise, in less time), or with finished rows dropped from the batch
against decoding every row to the end (`--compare drop`: the same tokens; log-probabilities
equal up to float rounding).

Calls alternate between the two ways (the order flips every call) over `--calls` calls, each on
the next `--prompts` training prompts of `--task` (`arithmetic` level 1 by default; `--style
chat` for a chat model's template) with its own seed, so the machine's drift falls on both; the
table gives each way's median seconds and the median of the paired ratios, with its quartiles.
Default size: the TRL benchmark's (16 prompts x 4, 32 new tokens).

    .venv/bin/python benchmarks/decode_step.py                          # tiny model, 16 x 4
    .venv/bin/python benchmarks/decode_step.py --prompts 256 --samples 1 --prefill-rows 32
    .venv/bin/python benchmarks/decode_step.py --compare drop --prompts 32 --samples 8 --max-new-tokens 40
    RLVR_DATA_DIR=../shared/data .venv/bin/python benchmarks/decode_step.py --compare drop \
        --model smollm2-135m --task gsm8k --style chat --prompts 8 --samples 1 --max-new-tokens 256 --calls 3
"""

from __future__ import annotations

import argparse
import statistics
import time


def measure(args) -> dict:
    import torch

    import tasks
    from algorithms.rollout import SamplingParams
    from harness.engines import decode
    from harness.engines.hf import HFEngine
    from harness.models import load_policy, resolve_model
    from harness.prompts import encode_prompts

    torch.set_num_threads(args.threads)
    tokenizer, policy = load_policy(resolve_model(args.model))
    task = tasks.get(args.task)  # benchmark tasks read $RLVR_DATA_DIR (else the hub)
    levels = {"levels": [1]} if args.task == "arithmetic" else {}
    examples = task.load("train", limit=args.prompts * 16, **levels)
    engine = HFEngine(policy, tokenizer, prefill_rows=args.prefill_rows)
    lean = decode.decoding_step
    if lean(policy) is None and args.compare == "lean":
        raise SystemExit(f"{args.model}: the lean decoding step does not apply to this model")

    def way(step, drop: bool):
        def setup():
            decode.decoding_step, engine.drop_finished = step, drop
        return setup

    ways = ({"new": way(lean, True), "old": way(lambda model: None, True)} if args.compare == "lean" else
            {"new": way(lean, True), "old": way(lean, False)})
    seconds = {name: [] for name in ways}
    rollouts = {name: [] for name in ways}
    try:
        for call in range(args.calls + 1):  # call 0 warms both up and is not counted
            start = args.prompts * (call % 16)
            texts = [ex.prompt for ex in examples[start:start + args.prompts]]
            prompts = encode_prompts(tokenizer, texts, args.style)
            params = SamplingParams(n=args.samples, temperature=1.0, top_p=1.0, max_new_tokens=args.max_new_tokens,
                                    seed=call)
            order = list(ways) if call % 2 else list(ways)[::-1]
            for name in order:
                ways[name]()
                begin = time.perf_counter()
                rollout = engine.generate(prompts, params)
                if call:
                    seconds[name].append(time.perf_counter() - begin)
                    rollouts[name].append((rollout.completion_ids, rollout.logprobs))
    finally:
        decode.decoding_step = lean
    ratios = [a / b for a, b in zip(seconds["new"], seconds["old"])]
    quartiles = statistics.quantiles(ratios, n=4)
    pairs = list(zip(rollouts["new"], rollouts["old"]))
    logp_gap = max((abs(x - y) for (_, logp_new), (_, logp_old) in pairs
                    for a, b in zip(logp_new, logp_old) for x, y in zip(a, b)), default=0.0)
    return {"new": statistics.median(seconds["new"]), "old": statistics.median(seconds["old"]),
            "ratio": statistics.median(ratios), "q1": quartiles[0], "q3": quartiles[2],
            "same": rollouts["new"] == rollouts["old"], "same_tokens": all(a[0] == b[0] for a, b in pairs),
            "logp_gap": logp_gap}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", choices=("lean", "drop"), default="lean")
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--task", default="arithmetic", help="training prompts of this task (arithmetic: level 1)")
    parser.add_argument("--style", default="plain", choices=("plain", "chat"), help="prompt template")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--prefill-rows", type=int, default=0)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    row = measure(args)
    new, old = {"lean": ("lean step", "through the model's forward"),
                "drop": ("finished rows dropped", "every row to the end")}[args.compare]
    print(f"\n### HF generation, {args.model}, {args.task} ({args.style} prompts), {args.prompts} prompts x {args.samples}, "
          f"{args.max_new_tokens} new tokens, "
          f"{args.threads} threads, {args.calls} alternating calls\n")
    print("| decoding | median s/generation |\n| --- | ---: |")
    print(f"| {old} | {row['old']:.4f} |\n| {new} | {row['new']:.4f} |")
    print(f"\nPaired ratio: **{row['ratio']:.3f}** (quartiles {row['q1']:.3f} to {row['q3']:.3f}); "
          f"rollouts bitwise the same: {'yes' if row['same'] else 'no'}; "
          f"tokens the same: {'yes' if row['same_tokens'] else 'NO'}; "
          f"largest log-probability difference {row['logp_gap']:.1e}")


if __name__ == "__main__":
    main()
