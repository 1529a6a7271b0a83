"""A rollout as padded tensors, laid out once: left-padded prompts, right-padded responses.

With every prompt left-padded to the same width P, response token t of every row sits at column
P + t, so per-token log-probs of the responses are one slice of the logits: no per-row offsets.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

from algorithms.rollout import Rollout


@dataclass
class RLBatch:
    """Shapes: N samples, P prompt width, T response width.

    input_ids, attention_mask, position_ids: [N, P+T]; response_mask: [N, T];
    rewards: [N] (verified score, before any KL shaping); sample_logp: [N, T] from the engine.
    Filled in by the algorithm as it needs them: old_logp, ref_logp, values ([N, T]),
    advantages ([N, T]), returns ([N, T]), offline_values ([N]).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    response_mask: torch.Tensor
    rewards: torch.Tensor
    sample_logp: torch.Tensor
    prompt_width: int
    prompt_index: torch.Tensor  # [N] which prompt of the step each sample answers
    old_logp: torch.Tensor | None = None
    ref_logp: torch.Tensor | None = None
    values: torch.Tensor | None = None
    advantages: torch.Tensor | None = None
    returns: torch.Tensor | None = None
    offline_values: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    @property
    def response_width(self) -> int:
        return self.response_mask.shape[1]

    @property
    def num_tokens(self) -> int:
        return int(self.attention_mask.sum())

    def select(self, index: torch.Tensor) -> "RLBatch":
        """Rows `index` of every per-sample tensor (for mini- and micro-batches)."""
        picked = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == len(self):
                picked[f.name] = value[index]
        return replace(self, **picked)

    def compact(self) -> "RLBatch":
        """The same rows without padding columns that no row uses: leading prompt columns that are
        padding in every row, response columns past the longest response. Log-probs, values and
        losses are unchanged (padding is masked out of attention and every loss); a micro-batch
        of short responses then costs what its tokens cost, not what the step's longest one does."""
        used = self.attention_mask[:, : self.prompt_width].any(dim=0).nonzero()
        start = int(used[0]) if len(used) else self.prompt_width - 1
        lengths = self.response_mask.sum(dim=-1)
        width = max(1, int(lengths.max())) if len(self) else 1
        if start == 0 and width == self.response_width:
            return self
        full, tokens = self.prompt_width + self.response_width, self.response_width
        trimmed = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, torch.Tensor) or value.dim() != 2:
                continue
            if value.shape[1] == full:  # input_ids, attention_mask, position_ids
                trimmed[f.name] = value[:, start: self.prompt_width + width]
            elif value.shape[1] == tokens:  # per response token
                trimmed[f.name] = value[:, :width]
        return replace(self, prompt_width=self.prompt_width - start, **trimmed)


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that count real tokens only, so left padding does not shift them."""
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


def build_batch(rollout: Rollout, rewards: list[float], pad_id: int, samples_per_prompt: int,
                device: torch.device | str = "cpu") -> RLBatch:
    # Filled from Python lists on the CPU, then moved to the module's device once.
    with torch.device("cpu"):
        cpu = _cpu_tensors(rollout, rewards, pad_id)
    input_ids, attention, response_mask, sample_logp, rewards_t, prompt_width = cpu
    n = len(rollout)
    return RLBatch(
        input_ids=input_ids.to(device),
        attention_mask=attention.to(device),
        position_ids=positions(attention).to(device),
        response_mask=response_mask.to(device),
        rewards=rewards_t.to(device),
        sample_logp=sample_logp.to(device),
        prompt_width=prompt_width,
        prompt_index=torch.arange(n, device=device) // samples_per_prompt,
    )


def _cpu_tensors(rollout: Rollout, rewards: list[float], pad_id: int) -> tuple:
    n = len(rollout)
    prompt_width = max(len(p) for p in rollout.prompt_ids)
    response_width = max(1, max(len(c) for c in rollout.completion_ids))
    width = prompt_width + response_width
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    attention = torch.zeros((n, width), dtype=torch.long)
    response_mask = torch.zeros((n, response_width), dtype=torch.float32)
    sample_logp = torch.zeros((n, response_width), dtype=torch.float32)
    for i, (prompt, completion, logp) in enumerate(zip(rollout.prompt_ids, rollout.completion_ids, rollout.logprobs)):
        start = prompt_width - len(prompt)
        input_ids[i, start:prompt_width] = torch.tensor(prompt, dtype=torch.long)
        attention[i, start:prompt_width] = 1
        if completion:
            end = prompt_width + len(completion)
            input_ids[i, prompt_width:end] = torch.tensor(completion, dtype=torch.long)
            attention[i, prompt_width:end] = 1
            response_mask[i, : len(completion)] = 1.0
            sample_logp[i, : len(logp)] = torch.tensor(logp, dtype=torch.float32)
    return input_ids, attention, response_mask, sample_logp, torch.tensor(rewards, dtype=torch.float32), prompt_width
