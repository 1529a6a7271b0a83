"""Compute budgets and the FLOP estimate, in one place.

FLOPs follow the usual dense-transformer estimate with N parameters:
- 2 N per token for every forward pass without gradient: generation (prompt prefill and every
  decoded token), reference, old-policy and critic passes;
- 6 N per token for a training forward and backward pass (policy, and critic when trained).
Tokens are those computed: in log-prob and training passes a prompt shared by a group of samples
(GRPO, REBEL) is computed, and counted, once per group.
Attention's sequence-length term is left out, as in Kaplan et al. (2020); at the lengths of
these benchmarks it is a few percent.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("samples", "tokens", "flops", "seconds")


@dataclass(frozen=True)
class Budget:
    kind: str
    limit: float

    @classmethod
    def parse(cls, text: str, where: str = "--budget") -> "Budget":
        kind, sep, value = text.partition("=")
        if not sep or kind not in KINDS:
            raise ValueError(f"{where} {text!r}: expected KIND=LIMIT with KIND one of {', '.join(KINDS)}")
        try:
            limit = float(value)
        except ValueError:
            raise ValueError(f"{where} {text!r}: LIMIT {value!r} is not a number") from None
        if not limit > 0:
            raise ValueError(f"{where} {text!r}: LIMIT must be > 0")
        return cls(kind, limit)

    def metric(self) -> str:
        return "budget/generated_tokens" if self.kind == "tokens" else f"budget/{self.kind}"


def flops(counters: dict, parameters: int, critic_parameters: int = 0) -> float:
    """FLOPs of the work recorded in an algorithm's token counters (see module docstring)."""
    forward = counters["prompt_tokens"] + counters["generated_tokens"] + counters["forward_tokens"]
    total = 2.0 * parameters * forward + 6.0 * parameters * counters["train_tokens"]
    total += 2.0 * critic_parameters * counters.get("critic_forward_tokens", 0)
    total += 6.0 * critic_parameters * counters.get("critic_train_tokens", 0)
    return total + counters.get("offline_flops", 0.0)


def budget_metrics(counters: dict, parameters: int, seconds: float, critic_parameters: int = 0) -> dict:
    return {
        "budget/samples": float(counters["samples"] + counters.get("offline_samples", 0)),
        "budget/generated_tokens": float(counters["generated_tokens"] + counters.get("offline_generated_tokens", 0)),
        "budget/flops": flops(counters, parameters, critic_parameters),
        "budget/seconds": float(seconds),
    }
