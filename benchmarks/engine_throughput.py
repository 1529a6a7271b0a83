"""Generated tokens per second: HF `generate`, our vLLM engine, and a bare `vllm.LLM.generate`.

Same prompts, batch, length and sampling for all three; each timed after a warm-up call, best
of `--repeats`. Prints one Markdown table per model.

    .venv/bin/python benchmarks/engine_throughput.py --models tiny smollm2-135m
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


def best_time(fn, repeats: int) -> tuple[float, object]:
    fn()  # warm-up: first-call allocations and kernel selection are not throughput
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def bench_model(name: str, prompts_n: int, samples: int, new_tokens: int, repeats: int, threads: int) -> list[dict]:
    import torch
    import vllm

    import tasks
    from algorithms.rollout import SamplingParams
    from harness.engines.hf import HFEngine
    from harness.engines.vllm import VLLMEngine, VLLMOptions, request_seed
    from harness.models import load_policy, resolve_model
    from harness.prompts import encode_prompts

    torch.set_num_threads(threads)
    path = resolve_model(name)
    tokenizer, policy = load_policy(path)
    task, style = ("arithmetic", "plain") if name == "tiny" else ("gsm8k", "chat")
    data_dir = None if task == "arithmetic" else os.environ.get("RLVR_DATA_DIR")
    examples = tasks.get(task).load("test", data_dir=data_dir, limit=prompts_n)
    prompt_ids = encode_prompts(tokenizer, [ex.prompt for ex in examples], style)
    params = SamplingParams(n=samples, temperature=1.0, top_p=1.0, max_new_tokens=new_tokens, seed=0)

    start = time.perf_counter()
    engine = VLLMEngine(path, tokenizer, policy=policy, options=VLLMOptions())
    start_s = time.perf_counter() - start
    sync_s, _ = best_time(lambda: engine.load_weights(policy), repeats)
    torch.set_num_threads(threads)  # vLLM lowers the process's threads when it starts

    rows = []

    def record(label, seconds, tokens):
        rows.append({"engine": label, "seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds})

    seconds, rollout = best_time(lambda: HFEngine(policy, tokenizer).generate(prompt_ids, params), repeats)
    record("hf generate", seconds, rollout.generated_tokens)
    seconds, rollout = best_time(lambda: engine.generate(prompt_ids, params), repeats)
    record("ours (vllm)", seconds, rollout.generated_tokens)
    stop = [tokenizer.eos_token_id]
    bare = [vllm.SamplingParams(n=samples, temperature=1.0, max_tokens=new_tokens, logprobs=0, stop_token_ids=stop,
                                seed=request_seed(0, i), detokenize=False) for i in range(len(prompt_ids))]
    requests = [{"prompt_token_ids": p} for p in prompt_ids]
    seconds, outputs = best_time(lambda: engine.llm.generate(requests, bare, use_tqdm=False), repeats)
    record("bare vllm.LLM", seconds, sum(len(c.token_ids) for o in outputs for c in o.outputs))
    return [dict(r, model=name, engine_start_s=start_s, weight_sync_s=sync_s) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny", "smollm2-135m"])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    for name in args.models:
        rows = bench_model(name, args.prompts, args.samples, args.new_tokens, args.repeats, args.threads)
        hf = rows[0]["tokens_per_s"]
        bare = rows[2]["tokens_per_s"]
        print(f"\n### {name}: {args.prompts} prompts x {args.samples} samples, up to {args.new_tokens} new tokens, "
              f"T=1, {args.threads} threads; engine start {rows[0]['engine_start_s']:.1f} s, "
              f"weight sync {rows[0]['weight_sync_s'] * 1000:.0f} ms\n")
        print("| engine | tokens | seconds | tokens/s | vs HF | vs bare vLLM |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['engine']} | {r['tokens']} | {r['seconds']:.2f} | {r['tokens_per_s']:.0f} | "
                  f"{r['tokens_per_s'] / hf:.2f}x | {r['tokens_per_s'] / bare:.2f}x |")


if __name__ == "__main__":
    main()
