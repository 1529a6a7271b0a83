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

from dataclasses import dataclass

import torch
from torch import Tensor

import algorithms.losses as losses
from algorithms.base import RLModule
from algorithms.config import AlgorithmConfig
from algorithms.offline_values import optimal_values  # noqa: F401  (V*, shared with the value diagnostic)


def regression_loss(logp: Tensor, ref_logp: Tensor, rewards: Tensor, values: Tensor,
                    beta2: float = 1e-3,
                    num_prompts: float | int | Tensor | None = None) -> Tensor:
    """A*-PO square loss ``sum_p (beta2 * (logp - ref_logp) - (r - V*))^2 / num_prompts``.

    The authors' code also subtracts ``1e-3 *`` token-mean entropy; that term belongs to the
    caller (the module's per-token entropy).

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
    return losses.squared_error_mean(residual, num_prompts)


# --- the LightningModule ------------------------------------------------------------------


@dataclass
class AStarPOConfig(AlgorithmConfig):
    samples_per_prompt: int = 1
    offline_samples: int = 8
    """N reference samples per training prompt in stage 1."""
    beta1: float = 0.5
    beta2: float = 1e-3
    entropy_coef: float = 1e-3
    """The authors' code subtracts this times the token-mean entropy (0 disables)."""
    filter_unsolved: bool = False
    """Drop training prompts that no reference sample solved (k = 0)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.offline_samples < 1:
            raise ValueError(f"offline_samples must be >= 1, got {self.offline_samples}")
        if self.beta1 <= 0 or self.beta2 <= 0:
            raise ValueError("beta1 and beta2 must be > 0")


class AStarPO(RLModule):
    name = "a_star_po"
    config_class = AStarPOConfig

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.optimal_value: dict[str, float] = {}

    @property
    def needs_ref_logp(self) -> bool:
        return True

    @property
    def needs_old_logp(self) -> bool:
        return False  # no ratio to an old policy: the regression is against the reference

    def offline_samples_per_prompt(self) -> int:
        return self.config.offline_samples

    def training_state(self) -> dict:
        return {**super().training_state(), "optimal_value": dict(self.optimal_value)}

    def load_training_state(self, state: dict) -> None:
        super().load_training_state(state)
        self.optimal_value = dict(state["optimal_value"])

    def set_offline(self, stats: dict) -> None:
        ids = list(stats)
        rewards = torch.tensor([stats[i] for i in ids], dtype=torch.float64)
        values = optimal_values(rewards, self.config.beta1)
        self.optimal_value = dict(zip(ids, values.tolist()))

    def keep_example(self, example, stats: dict) -> bool:
        return not self.config.filter_unsolved or max(stats[example.id]) > 0

    def prepare(self, batch, examples):
        values = [self.optimal_value[ex.id] for ex in examples for _ in range(self.samples_per_prompt)]
        batch.offline_values = torch.tensor(values, dtype=batch.rewards.dtype, device=batch.rewards.device)

    def advantages(self, batch):
        """[N, T] the regression targets r - V*(x), on every valid token (the loss regresses the
        sequence log-ratio onto the per-sequence target, read from rewards and offline values)."""
        return (batch.rewards - batch.offline_values)[:, None] * batch.response_mask

    @property
    def entropy_grad(self) -> bool:
        return self.config.entropy_coef > 0

    def loss(self, batch, logp, entropy, denominators):
        mask = batch.response_mask
        seq = losses.sequence_logp(logp, mask)
        ref = losses.sequence_logp(batch.ref_logp, mask)
        loss = regression_loss(seq, ref, batch.rewards, batch.offline_values, self.config.beta2,
                               num_prompts=denominators["num_seqs"])
        stats = {"policy_loss": float(loss.detach())}
        if self.config.entropy_coef > 0:
            bonus = losses.aggregate(entropy, mask, "token-mean", **denominators)
            loss = loss - self.config.entropy_coef * bonus
        return loss, stats
