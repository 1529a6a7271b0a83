"""REINFORCE++: one rollout per prompt, batch-mean baseline, globally whitened token advantages.

Hu, "REINFORCE++: A Simple and Efficient Approach for Aligning Large Language Models",
arXiv 2501.03262. The BASIS paper's single-rollout baseline (ALGORITHMS.md).

Token rewards are the verified score minus the batch mean of the scores at the last valid token,
and ``-kl_coef * k1(old, ref)`` at every token (the KL is in the reward, no gradient). A token's
advantage is its return-to-go with gamma = 1 (:func:`returns_to_go`), whitened over the valid
tokens of the global batch. Loss: the clipped surrogate (:func:`algorithms.losses.policy_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

import algorithms.losses as losses
from algorithms.base import RLModule
from algorithms.batch_baselines import batch_mean_values
from algorithms.config import AlgorithmConfig
from algorithms.ppo import token_rewards


def returns_to_go(rewards: Tensor, mask: Tensor) -> Tensor:
    """``G_t = sum_{s >= t} r_s`` over valid tokens (gamma = 1); 0 where ``mask == 0``.

    Args:
        rewards: ``[B, T]`` token rewards.
        mask: ``[B, T]`` right-padded (each row's valid tokens a prefix).

    Returns:
        ``[B, T]``.
    """
    valid = mask.bool()
    masked = rewards.masked_fill(~valid, 0.0)
    return (masked.flip(-1).cumsum(-1).flip(-1)).masked_fill(~valid, 0.0)


def reinforce_pp_advantages(scores: Tensor, old_logp: Tensor, ref_logp: Tensor, mask: Tensor,
                            kl_coef: float, baseline: Tensor) -> Tensor:
    """Unwhitened REINFORCE++ advantages: the return-to-go of the KL-shaped token rewards, the
    score minus its baseline at the last valid token.

    Args:
        scores: ``[B]`` verified rewards.
        old_logp, ref_logp: ``[B, T]`` log-probs of the sampling and the reference policy.
        mask: ``[B, T]``.
        kl_coef: in-reward k1 coefficient.
        baseline: ``[B]`` (REINFORCE++: the batch mean of the scores).

    Returns:
        ``[B, T]``, ``score - baseline - kl_coef * sum_{s >= t} k1_s`` at valid tokens, 0 elsewhere.
    """
    centred = scores.to(old_logp.dtype) - baseline.to(old_logp.dtype)
    return returns_to_go(token_rewards(centred, old_logp, ref_logp, mask, kl_coef), mask)


# --- the LightningModule ------------------------------------------------------------------


@dataclass
class ReinforcePPConfig(AlgorithmConfig):
    samples_per_prompt: int = 1
    kl_coef: float = 1e-3
    """In-reward k1 coefficient (the KL is a token reward, not a loss term)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.samples_per_prompt != 1:
            raise ValueError(f"samples_per_prompt must be 1 for REINFORCE++ (one rollout per prompt), "
                             f"got {self.samples_per_prompt}")


class ReinforcePP(RLModule):
    name = "reinforce_pp"
    config_class = ReinforcePPConfig

    @property
    def needs_old_logp(self) -> bool:
        # As PPO: the in-reward KL takes the sampler's log-probs unless top-p truncated them.
        return super().needs_old_logp or self.config.top_p < 1.0

    def advantages(self, batch):
        mask = batch.response_mask
        scores, mine = self.global_batch(batch.rewards)
        baseline = batch_mean_values(scores, leave_one_out=False)[mine]  # the global batch's mean
        old = batch.old_logp if batch.old_logp is not None else batch.sample_logp
        ref = batch.ref_logp if batch.ref_logp is not None else old
        with torch.no_grad():
            advantages = reinforce_pp_advantages(batch.rewards, old, ref, mask, self.config.kl_coef, baseline)
            return self.masked_whiten(advantages, mask) * mask  # over the global batch under DDP

    def loss(self, batch, logp, entropy, denominators):
        c = self.config
        return losses.policy_loss(logp, batch.old_logp, batch.advantages, batch.response_mask, c.clip_eps,
                                  c.loss_agg, **denominators)
