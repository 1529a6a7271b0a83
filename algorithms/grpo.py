"""GRPO: group-relative advantages, no critic.

Shao et al., "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language
Models", arXiv 2402.03300. ``scale_by_std=False`` is Dr. GRPO (Liu et al., arXiv 2503.20783).

G responses are sampled per prompt; each response's advantage is its reward minus the mean
reward of its group, optionally divided by the group's standard deviation. The same advantage
applies to every token of the response. Loss = agg(clipped surrogate) + kl_coef * agg(k3),
both from :mod:`algorithms.losses`.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

import algorithms.losses as losses
from algorithms.base import RLModule
from algorithms.config import AlgorithmConfig


def group_advantages(rewards: Tensor, group_size: int, scale_by_std: bool = True,
                     eps: float = 1e-6) -> Tensor:
    """Group-normalised advantages.

    ``A_i = (r_i - mean_group) / (std_group + eps)``, std unbiased (``torch.std``); with
    ``scale_by_std=False`` only the group mean is removed. A group whose rewards are all equal
    (all right or all wrong) gets exactly 0.

    Args:
        rewards: ``[N]``, prompt-major: rows ``i*G .. i*G+G-1`` are the G responses to prompt i.
        group_size: G, at least 2, dividing N.
        scale_by_std: divide by the group's standard deviation.
        eps: added to the standard deviation.

    Returns:
        ``[N]`` advantages, dtype of ``rewards``.
    """
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D [N], got shape {tuple(rewards.shape)}")
    if group_size < 2:
        raise ValueError(f"group_size must be at least 2 (GRPO needs groups), got {group_size}")
    if rewards.numel() % group_size != 0:
        raise ValueError(
            f"group_size {group_size} does not divide the number of rewards {rewards.numel()}"
        )
    groups = rewards.view(-1, group_size)
    advantages = groups - groups.mean(dim=-1, keepdim=True)
    if scale_by_std:
        advantages = advantages / (groups.std(dim=-1, keepdim=True) + eps)
    # Exactly 0 for constant groups, also when their mean is not exactly representable
    # (0.1 * 8 / 8 != 0.1) and when eps = 0 would give 0 / 0.
    constant = (groups == groups[:, :1]).all(dim=-1, keepdim=True)
    return advantages.masked_fill(constant, 0.0).reshape(-1)


# --- the LightningModule ------------------------------------------------------------------



@dataclass
class GRPOConfig(AlgorithmConfig):
    samples_per_prompt: int = 8
    kl_coef: float = 1e-3
    scale_by_std: bool = True
    """False gives Dr. GRPO (mean removed, no division by the group's std)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.samples_per_prompt < 2:
            raise ValueError(f"samples_per_prompt must be >= 2 for GRPO (it needs groups), got {self.samples_per_prompt}")


class GRPO(RLModule):
    name = "grpo"
    config_class = GRPOConfig

    def advantages(self, batch):
        adv = group_advantages(batch.rewards, self.samples_per_prompt, self.config.scale_by_std)
        return adv[:, None] * batch.response_mask

    def loss(self, batch, logp, entropy, denominators):
        c = self.config
        return losses.policy_loss(logp, batch.old_logp, batch.advantages, batch.response_mask, c.clip_eps,
                                  c.loss_agg, c.kl_coef, batch.ref_logp, c.kl_kind, **denominators)
