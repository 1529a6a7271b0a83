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


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct (Chen et al. 2021):
    1 - C(n-c, k) / C(n, k), computed as a stable product."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    result = 1.0
    for i in range(n - c + 1, n + 1):
        result *= 1.0 - k / i
    return 1.0 - result


def answer_key(completion: str) -> str | None:
    r"""The final answer a completion states (`####` line, else last `\boxed{}`), whitespace
    removed, for voting; None if it states none. Pure string work: safe on model text."""
    from tasks.extract import MAX_COMPLETION_CHARS, gsm8k_answer, last_boxed, truncate

    tail = truncate(completion, MAX_COMPLETION_CHARS)
    answer = gsm8k_answer(tail)
    if answer is None:
        answer = last_boxed(tail)
    if answer is None:
        return None
    answer = "".join(answer.split())
    return answer or None


def majority_vote(answers: list[str | None], scores: list[float]) -> float:
    """maj@k of one prompt: the score of the most frequent stated answer (ties: the one stated
    first). If no sample states an answer (no `####`, no `\\boxed{}`), the first sample's score:
    the verifier searched its text itself, and so maj@1 is pass@1. `answers[i]` is sample i's
    `answer_key`."""
    if len(answers) != len(scores):
        raise ValueError(f"{len(answers)} answers for {len(scores)} scores")
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return float(scores[0]) if scores else 0.0
    top = max(votes.values())
    winner = next(a for a in answers if a is not None and votes[a] == top)
    return float(scores[answers.index(winner)])


def sample_metrics(completions: list[str], verdicts: list, samples: int) -> dict:
    """Metrics of `samples` completions per prompt (prompt-major): `eval/accuracy` (pass@1, the
    mean), `eval/pass_at_k` and `eval/maj_at_k` with k = samples, `eval/status/<status>` counts."""
    if len(completions) != len(verdicts) or samples < 1 or len(verdicts) % samples:
        raise ValueError(f"{len(completions)} completions, {len(verdicts)} verdicts, {samples} samples per prompt")
    prompts = len(verdicts) // samples
    pass_k, maj_k = [], []
    for p in range(prompts):
        rows = range(p * samples, (p + 1) * samples)
        scores = [verdicts[i].score for i in rows]
        pass_k.append(pass_at_k(samples, int(sum(s > 0 for s in scores)), samples))
        maj_k.append(majority_vote([answer_key(completions[i]) for i in rows], scores))
    metrics = {
        "eval/accuracy": sum(v.score for v in verdicts) / max(1, len(verdicts)),
        "eval/pass_at_k": sum(pass_k) / max(1, prompts),
        "eval/maj_at_k": sum(maj_k) / max(1, prompts),
        "eval/prompts": float(prompts),
        "eval/samples_per_prompt": float(samples),
    }
    for status, count in sorted(Counter(v.status for v in verdicts).items()):
        metrics[f"eval/status/{status}"] = float(count)
    return metrics
