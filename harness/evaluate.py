"""Held-out evaluation with the rollout engine and the one verifier."""

from __future__ import annotations

from collections import Counter

import torch

from algorithms.rollout import SamplingParams


def sample_and_verify(engine, task, examples: list, encode_fn, params: SamplingParams):
    """`params.n` rollouts per example (prompt-major) and their verdicts: (rollout, verdicts)."""
    rollout = engine.generate(encode_fn(examples), params)
    verdicts = task.reward_many(rollout.texts, [ex for ex in examples for _ in range(params.n)])
    return rollout, verdicts


def evaluate(engine, task, examples: list, encode_fn, samples: int = 1, temperature: float = 1.0,
             max_new_tokens: int = 64, seed: int = 0) -> dict:
    """pass@1 (mean over `samples` per prompt) and verifier status counts.

    A fixed seed means evaluations before and after training draw the same random numbers, so the
    difference between them comes from the weights.
    """
    params = SamplingParams(n=samples, temperature=temperature, top_p=1.0,
                            max_new_tokens=max_new_tokens, seed=seed)
    rollout, verdicts = sample_and_verify(engine, task, examples, encode_fn, params)
    scores = torch.tensor([v.score for v in verdicts], dtype=torch.float64).view(len(examples), samples)
    metrics = {"eval/accuracy": float(scores.mean())}
    statuses = Counter(v.status for v in verdicts)
    for status, count in statuses.items():
        metrics[f"eval/status/{status}"] = float(count)
    metrics["eval/response_length"] = rollout.generated_tokens / max(1, len(rollout))
    return metrics
