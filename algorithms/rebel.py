"""REBEL: reinforcement learning by regressing relative rewards.

Gao et al., "REBEL: Reinforcement Learning via Regressing Relative Rewards", arXiv 2404.16767.

Two responses per prompt. The difference of the two responses' policy log-ratios
(``log pi_theta / pi_old``) is regressed onto eta times the difference of their rewards; no
clipping, no critic. The KL to the reference enters the reward at rollout time
(:func:`kl_shaped_rewards`), without gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

import algorithms.losses as losses
from algorithms.base import RLModule
from algorithms.config import AlgorithmConfig


def kl_shaped_rewards(score: Tensor, seq_logp_old: Tensor, seq_logp_ref: Tensor,
                      kl_coef: float) -> Tensor:
    """``R = score - kl_coef * (seq_logp_old - seq_logp_ref)``, a sequence-level k1 penalty.

    Args:
        score: ``[P, 2]`` (any shape) verified rewards.
        seq_logp_old: same shape, sequence log-probs under the sampling policy.
        seq_logp_ref: same shape, sequence log-probs under the reference policy.
        kl_coef: KL coefficient.

    Returns:
        Same shape as ``score``.
    """
    return score - kl_coef * (seq_logp_old - seq_logp_ref)


def regression_loss(logp: Tensor, old_logp: Tensor, rewards: Tensor, eta: float = 1.0,
                    num_prompts: float | int | Tensor | None = None) -> Tensor:
    """REBEL square loss.

    ``sum_p ((logp[p,0] - old[p,0]) - (logp[p,1] - old[p,1]) - eta * (R[p,0] - R[p,1]))^2 /
    num_prompts``.

    Args:
        logp: ``[P, 2]`` sequence log-probs of the two responses under the current policy.
        old_logp: ``[P, 2]`` the same under the sampling policy.
        rewards: ``[P, 2]`` (KL-shaped) rewards.
        eta: reward scale (the inverse of the paper's step size).
        num_prompts: global number of prompts when ``P`` is a micro-batch (default ``P``), so
            that micro-batch losses sum to the full-batch loss.

    Returns:
        0-dim loss tensor.
    """
    for name, tensor in (("logp", logp), ("old_logp", old_logp), ("rewards", rewards)):
        if tensor.dim() != 2 or tensor.shape[-1] != 2:
            raise ValueError(f"{name} must have shape [P, 2], got {tuple(tensor.shape)}")
    log_ratio = logp - old_logp
    residual = (log_ratio[:, 0] - log_ratio[:, 1]) - eta * (rewards[:, 0] - rewards[:, 1])
    return losses.squared_error_mean(residual, num_prompts)


# --- the LightningModule ------------------------------------------------------------------


@dataclass
class REBELConfig(AlgorithmConfig):
    samples_per_prompt: int = 2
    kl_coef: float = 0.05
    """In-reward sequence KL coefficient."""
    eta: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.samples_per_prompt != 2:
            raise ValueError(f"samples_per_prompt must be 2 for REBEL (it regresses on pairs), got {self.samples_per_prompt}")


class REBEL(RLModule):
    name = "rebel"
    config_class = REBELConfig

    # needs_old_logp: the base's rule. With one epoch and one mini-batch the policy that sampled
    # is the one being trained, so the shaped reward and the regression take old = current,
    # detached, in the loss: one forward pass per step less, the same numbers.

    def advantages(self, batch):
        """[N, T]: each response's KL-shaped reward relative to its pair, ``(R_i - R_j) / 2``, on
        every valid token: the per-token form of what the regression fits (it regresses the pair's
        log-ratio difference onto ``eta * (R_i - R_j)``). The loss computes its target itself from
        the micro-batch's old log-probs (with one epoch: the current ones, detached, which exist only
        there); with no old-policy pass yet this KL term uses the sampler's log-probs."""
        shaped = self.shaped_rewards(batch, batch.old_logp if batch.old_logp is not None else batch.sample_logp)
        pairs = shaped.view(-1, 2)
        relative = (pairs - pairs.mean(-1, keepdim=True)).reshape(-1)
        return relative[:, None] * batch.response_mask

    def shaped_rewards(self, batch, old_logp):
        mask = batch.response_mask
        old = losses.sequence_logp(old_logp, mask)
        ref = losses.sequence_logp(batch.ref_logp, mask) if batch.ref_logp is not None else old
        return kl_shaped_rewards(batch.rewards, old, ref, self.config.kl_coef)

    def loss(self, batch, logp, entropy, denominators):
        mask = batch.response_mask
        shaped = self.shaped_rewards(batch, batch.old_logp)
        seq = losses.sequence_logp(logp, mask).view(-1, 2)
        old = losses.sequence_logp(batch.old_logp, mask).view(-1, 2)
        loss = regression_loss(seq, old, shaped.view(-1, 2), self.config.eta,
                               num_prompts=denominators["num_seqs"] / 2)
        stats = {"policy_loss": float(loss.detach())}
        if batch.ref_logp is not None:  # k3 to the reference under the sampling policy, as the base logs it
            kl = losses.kl_penalty(batch.old_logp, batch.ref_logp, "k3")
            stats["kl_ref"] = float(losses.aggregate(kl, mask, "token-mean", **denominators))
        return loss, stats
