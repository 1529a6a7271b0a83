"""Baselines from the batch's own online rewards: the batch mean, the group mean, leave-one-out.

verl ``core_algos`` style: pure functions on tensors, shapes in the docstrings, float32 or float64
in, same dtype out (float32 for integer rewards). Registered for the value diagnostic in
:mod:`algorithms.estimators`.

Sources: batch mean, REINFORCE++ (Hu, arXiv 2501.03262), one rollout per prompt; group mean,
GRPO (arXiv 2402.03300); leave-one-out, RLOO (Ahmadian et al., arXiv 2402.14740).
"""

from __future__ import annotations

import torch
from torch import Tensor


def float_dtype(*tensors: Tensor) -> torch.dtype:
    """The first floating dtype among ``tensors``, else float32 (integer or boolean rewards)."""
    floating = [t.dtype for t in tensors if isinstance(t, Tensor) and t.is_floating_point()]
    return floating[0] if floating else torch.float32


def batch_mean_values(rewards: Tensor, leave_one_out: bool = True) -> Tensor:
    """REINFORCE++-style single-rollout baseline: the batch mean reward.

    By default each prompt's baseline is the mean of the *other* rewards,
    ``(sum_j r_j - r_i) / (B - 1)``, so that it never uses ``r_i`` and the policy gradient stays
    unbiased; ``leave_one_out=False`` gives REINFORCE++'s plain batch mean. A batch of one gets 0
    with ``leave_one_out``.

    Args:
        rewards: ``[B]``.

    Returns:
        ``[B]`` (float32 for integer rewards).
    """
    rewards = rewards.to(float_dtype(rewards))
    total = rewards.sum()
    if not leave_one_out:
        return total.expand_as(rewards) / rewards.numel()
    if rewards.numel() < 2:
        return torch.zeros_like(rewards)
    return (total - rewards) / (rewards.numel() - 1)


def _groups(rewards: Tensor, group_size: int, who: str) -> Tensor:
    if rewards.dim() != 1:
        raise ValueError(f"{who}: rewards must be 1-D [N], got shape {tuple(rewards.shape)}")
    if group_size < 2:
        raise ValueError(f"{who}: group_size must be at least 2, got {group_size}")
    if rewards.numel() % group_size != 0:
        raise ValueError(f"{who}: group_size {group_size} does not divide the number of rewards {rewards.numel()}")
    return rewards.to(float_dtype(rewards)).view(-1, group_size)


def group_mean_values(rewards: Tensor, group_size: int) -> Tensor:
    """Each sample's baseline is its group's mean reward, itself included (GRPO's).

    Args:
        rewards: ``[N]`` prompt-major: rows ``i*G .. i*G+G-1`` are prompt i's G samples.
        group_size: G >= 2, dividing N.

    Returns:
        ``[N]``.
    """
    groups = _groups(rewards, group_size, "group_mean_values")
    return groups.mean(-1, keepdim=True).expand_as(groups).reshape(-1)


def leave_one_out_values(rewards: Tensor, group_size: int) -> Tensor:
    """Each sample's baseline is the mean of the *other* G - 1 rewards of its group (RLOO's).

    ``b_i = (sum_group r - r_i) / (G - 1)``; never uses ``r_i``.

    Args:
        rewards: ``[N]`` prompt-major, as :func:`group_mean_values`.
        group_size: G >= 2, dividing N.

    Returns:
        ``[N]``.
    """
    groups = _groups(rewards, group_size, "leave_one_out_values")
    return ((groups.sum(-1, keepdim=True) - groups) / (group_size - 1)).reshape(-1)

