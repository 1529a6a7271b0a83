"""A*-PO: policy optimisation via an optimal advantage regression.

Brantley et al., "Accelerating RL for LLM Reasoning with Optimal Advantage Regression",
arXiv 2505.20686.

Stage 1 (offline, once per prompt): N samples from pi_ref give the optimal value of the
KL-regularised objective, ``V*(x) = beta1 * log mean_i exp(r_i / beta1)``
(:func:`optimal_values`). Stage 2 (online, one sample per prompt): regress
``beta2 * log(pi_theta / pi_ref)`` onto the optimal advantage ``r - V*(x)``
(:func:`regression_loss`). No old-policy ratio, no clipping, no critic.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def optimal_values(rewards: Tensor, beta1: float = 0.5) -> Tensor:
    """``V*(x) = beta1 * (logsumexp(r / beta1) - log N)`` per prompt.

    For binary rewards with k of 8 correct at ``beta1 = 0.5``:
    0, .294, .477, .611, .717, .804, .878, .943, 1.0 for k = 0..8.

    Args:
        rewards: ``[P, N]`` rewards of N reference samples per prompt.
        beta1: temperature; as ``beta1 -> 0`` V* tends to the max reward, as
            ``beta1 -> inf`` to the mean.

    Returns:
        ``[P]``, dtype of ``rewards`` (float32 for integer rewards).
    """
    if beta1 <= 0:
        raise ValueError(f"beta1 must be positive, got {beta1}")
    if rewards.dim() != 2:
        raise ValueError(f"rewards must have shape [P, N], got {tuple(rewards.shape)}")
    if not rewards.is_floating_point():
        rewards = rewards.float()
    n = rewards.shape[-1]
    return beta1 * (torch.logsumexp(rewards / beta1, dim=-1) - math.log(n))


def regression_loss(logp: Tensor, ref_logp: Tensor, rewards: Tensor, values: Tensor,
                    beta2: float = 1e-3,
                    num_prompts: float | int | Tensor | None = None) -> Tensor:
    """A*-PO square loss ``sum_p (beta2 * (logp - ref_logp) - (r - V*))^2 / num_prompts``.

    The authors' code also subtracts ``1e-3 *`` token-mean entropy; that term belongs to the
    caller (:func:`algorithms.losses.entropy_from_logits`).

    Args:
        logp: ``[P]`` sequence log-probs under the current policy.
        ref_logp: ``[P]`` sequence log-probs under the reference policy.
        rewards: ``[P]`` rewards of the online samples.
        values: ``[P]`` V* from :func:`optimal_values`.
        beta2: KL-regularisation strength of stage 2.
        num_prompts: global number of prompts when ``P`` is a micro-batch (default ``P``).

    Returns:
        0-dim loss tensor.
    """
    residual = beta2 * (logp - ref_logp) - (rewards - values)
    count = logp.shape[0] if num_prompts is None else num_prompts
    count = torch.as_tensor(count, dtype=logp.dtype, device=logp.device).clamp_min(1.0)
    return (residual * residual).sum() / count
