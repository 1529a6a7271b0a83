"""The update's peak live heap with chunked log-probs (`logprob_chunk_size`) against whole logits.

GRPO on SmolLM2-135M-Instruct (49,152-token vocabulary): `--prompts` prompts x `--group` samples,
every response `--response-tokens` long (random token ids: the update's memory depends on shapes,
not on what the tokens say), real GSM8K prompts in the chat template. One process builds the
batch once and runs the update (`accumulate_gradients`: forward and backward of every
micro-batch, no optimizer step) once per setting; the peak is the highest live heap
(`harness.heap`, glibc's bytes in use) seen during the update, less the live heap at its start
(model, batch and the gradients' storage, allocated before), read after every module's forward,
after every gradient accumulation and by a sampler thread every `--sampler-ms`. `--micro-batches`
runs the update's first micro-batches only: with responses of equal length every micro-batch has
the same shape, so the first one already peaks. Gradients of every setting are compared with the
first one's.

    .venv/bin/python benchmarks/chunked_logp.py                         # 8 x 4, 512 tokens, checkpointing on
    .venv/bin/python benchmarks/chunked_logp.py --checkpointing off --prompts 2
"""

from __future__ import annotations

import argparse
import time

import common


def build(args):
    import torch

    import algorithms
    import tasks
    from algorithms.batch import build_batch
    from algorithms.rollout import Rollout
    from harness.models import load_policy, resolve_model
    from harness.prompts import encode_prompts

    tokenizer, policy = load_policy(resolve_model("smollm2-135m"))
    examples = tasks.get("gsm8k").load("train", data_dir=args.data_dir, limit=args.prompts)
    prompts = encode_prompts(tokenizer, [ex.prompt for ex in examples], "chat")
    generator = torch.Generator().manual_seed(0)
    completions = torch.randint(0, policy.config.vocab_size, (len(prompts) * args.group, args.response_tokens),
                                generator=generator).tolist()
    rollout = Rollout([p for p in prompts for _ in range(args.group)], completions,
                      [[0.0] * args.response_tokens for _ in completions], [""] * len(completions))
    rewards = torch.rand(len(completions), generator=generator).round().tolist()
    config = algorithms.get("grpo").config_class(samples_per_prompt=args.group, kl_coef=0.0,
                                                 micro_batch_size=args.micro_batch_size,
                                                 gradient_checkpointing=args.checkpointing == "on")
    module = algorithms.get("grpo")(policy, tokenizer, None, None, None, config)
    batch = build_batch(rollout, rewards, tokenizer.pad_token_id, args.group)
    batch.advantages = module.advantages(batch)
    return module, batch


def plan_estimate(module, batch) -> float:
    """The memory plan's update estimate for this micro-batch shape, less the gradients (allocated
    before the update here)."""
    import dataclasses
    from types import SimpleNamespace

    from harness.memory_plan import model_shape, plan_run

    run = SimpleNamespace(precision="32-true", devices=1, num_nodes=1, engine="hf", engine_options={})
    config = dataclasses.replace(module.config, max_new_tokens=batch.response_width)
    plan = plan_run(run, config, type(module), model_shape("smollm2-135m")[0], 80.0, prompt_tokens=batch.prompt_width)
    return plan.update_only_gb() - plan.parts["gradients"][0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--group", type=int, default=4)
    p.add_argument("--response-tokens", type=int, default=512)
    p.add_argument("--micro-batch-size", type=int, default=4)
    p.add_argument("--chunk-sizes", type=int, nargs="+", default=[0, 256], help="0: whole logits")
    p.add_argument("--checkpointing", choices=["on", "off"], default="on")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--micro-batches", type=int, default=0, help="only the first N micro-batches (0: all)")
    p.add_argument("--sampler-ms", type=float, default=5.0, help="0: hooks only")
    p.add_argument("--data-dir", default=common.MODELS["smollm2-135m"]["data_dir"])
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    module, batch = build(args)
    if args.micro_batches:
        rows = torch.cat([r for r, _ in module.micro_batches(batch)[: args.micro_batches]])
        batch = batch.select(rows.sort().values)
    from harness.memory_plan import HeapPeakSampler

    sampler = HeapPeakSampler(args.sampler_ms)
    sampler.watch(module.policy)
    print(f"# GRPO, SmolLM2-135M-Instruct, {args.prompts} prompts x {args.group}, {args.response_tokens}-token "
          f"responses (prompt width {batch.prompt_width}), micro-batches of {args.micro_batch_size} "
          f"({len(batch)} rows measured), gradient "
          f"checkpointing {args.checkpointing}, {args.threads} threads; {common.load_average()}", flush=True)
    rows, first = [], None
    for chunk in args.chunk_sizes:
        module.config.logprob_chunk_size = chunk
        for q in module.policy.parameters():  # the gradients' storage is there before the update starts
            q.grad = torch.zeros_like(q)
        started = time.perf_counter()
        stats, peak_gb = sampler.measure(lambda: module.accumulate_gradients(batch))
        seconds = time.perf_counter() - started
        grad = torch.cat([q.grad.flatten() for q in module.policy.parameters() if q.grad is not None])
        if first is None:
            first = (chunk, grad.clone())
        difference = ((grad - first[1]).norm() / first[1].norm()).item()
        rows.append([chunk or "whole logits", f"{peak_gb:.3f}", f"{plan_estimate(module, batch):.3f}",
                     f"{sampler.peak / 2**30:.3f}", f"{seconds:.1f}", f"{stats['loss']:.6f}", f"{difference:.1e}"])
        print(rows[-1], flush=True)
    base = float(rows[0][1])
    for row in rows:
        row.insert(2, f"{float(row[1]) / base:.2f}")
    print(common.markdown_table(["logprob_chunk_size", "update peak heap GB (above start)", "vs first",
                                 "plan's estimate GB",
                                 "peak live heap GB", "update s", "loss",
                                 f"gradient rel. diff. vs {first[0] or 'whole logits'}"], rows))


if __name__ == "__main__":
    main()
