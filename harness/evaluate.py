"""Held-out evaluation with the rollout engine and the one verifier."""

from __future__ import annotations

from collections import Counter

import torch

from algorithms.rollout import SamplingParams


def evaluate(engine, task, examples: list, encode_fn, samples: int = 1, temperature: float = 1.0,
             max_new_tokens: int = 64, seed: int = 0) -> dict:
    """pass@1 (mean over `samples` per prompt) and verifier status counts.

    A fixed seed means evaluations before and after training draw the same random numbers, so the
    difference between them comes from the weights.
    """
    prompt_ids = encode_fn(examples)
    params = SamplingParams(n=samples, temperature=temperature, top_p=1.0,
                            max_new_tokens=max_new_tokens, seed=seed)
    rollout = engine.generate(prompt_ids, params)
    expanded = [ex for ex in examples for _ in range(samples)]
    verdicts = task.reward_many(rollout.texts, expanded)
    scores = torch.tensor([v.score for v in verdicts], dtype=torch.float64).view(len(examples), samples)
    metrics = {"eval/accuracy": float(scores.mean())}
    statuses = Counter(v.status for v in verdicts)
    for status, count in statuses.items():
        metrics[f"eval/status/{status}"] = float(count)
    metrics["eval/response_length"] = rollout.generated_tokens / max(1, len(rollout))
    return metrics
