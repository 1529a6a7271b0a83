"""RLOO: REINFORCE with a leave-one-out baseline, k samples per prompt, no critic.

Ahmadian et al., "Back to Basics: Revisiting REINFORCE Style Optimization for Learning from Human
Feedback in LLMs", arXiv 2402.14740.

Each of a prompt's k responses is scored against the mean reward of the *other* k - 1:
``A_i = r_i - mean_{j != i} r_j`` (:func:`leave_one_out_advantages`), unbiased because the
baseline never sees ``r_i``, and not divided by a standard deviation (unlike GRPO). The same
advantage applies to every token. Loss: :func:`algorithms.losses.policy_loss`, the clipped
surrogate (with one epoch it is plain REINFORCE) plus the in-loss k3 KL, as GRPO.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

import algorithms.losses as losses
from algorithms.base import RLModule
from algorithms.batch_baselines import leave_one_out_values
from algorithms.config import AlgorithmConfig


def leave_one_out_advantages(rewards: Tensor, group_size: int) -> Tensor:
    """``A_i = r_i - (sum_group r - r_i) / (k - 1)``.

    Args:
        rewards: ``[N]``, prompt-major: rows ``i*k .. i*k+k-1`` are the k responses to prompt i.
        group_size: k, at least 2, dividing N.

    Returns:
        ``[N]``, float dtype of ``rewards`` (float32 for integer rewards).
    """
    baselines = leave_one_out_values(rewards, group_size)
    return rewards.to(baselines.dtype) - baselines


# --- the LightningModule ------------------------------------------------------------------


@dataclass
class RLOOConfig(AlgorithmConfig):
    samples_per_prompt: int = 8
    """k responses per prompt."""
    kl_coef: float = 1e-3
    """In-loss KL to the reference (kl_kind), as GRPO."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.samples_per_prompt < 2:
            raise ValueError(f"samples_per_prompt must be >= 2 for RLOO (it leaves one out), "
                             f"got {self.samples_per_prompt}")


class RLOO(RLModule):
    name = "rloo"
    config_class = RLOOConfig

    def advantages(self, batch):
        adv = leave_one_out_advantages(batch.rewards, self.samples_per_prompt)
        return adv[:, None] * batch.response_mask

    def loss(self, batch, logp, entropy, denominators):
        c = self.config
        return losses.policy_loss(logp, batch.old_logp, batch.advantages, batch.response_mask, c.clip_eps,
                                  c.loss_agg, c.kl_coef, batch.ref_logp, c.kl_kind, **denominators)
