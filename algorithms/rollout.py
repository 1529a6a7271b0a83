"""The rollout engine protocol and what a rollout returns.

Engines (HF `generate`, vLLM) live in `harness.engines`; algorithms only see this protocol, so
they never import vLLM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


@dataclass
class Rollout:
    """Samples in prompt-major order: rows i*n .. i*n+n-1 answer prompt i.

    prompt_ids / completion_ids: token ids per sample (completion ends with EOS if it stopped);
    logprobs: the sampler's per-token log-probs of the completion tokens;
    texts: decoded completions without special tokens.
    """

    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    logprobs: list[list[float]]
    texts: list[str]

    def __len__(self) -> int:
        return len(self.completion_ids)

    @property
    def generated_tokens(self) -> int:
        return sum(len(c) for c in self.completion_ids)

    @property
    def prompt_tokens(self) -> int:
        return sum(len(p) for p in self.prompt_ids)


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    seed: int = 0


class RolloutEngine(Protocol):
    def generate(self, prompt_ids: list[list[int]], params: SamplingParams) -> Rollout: ...

    def load_weights(self, model: torch.nn.Module) -> None: ...
