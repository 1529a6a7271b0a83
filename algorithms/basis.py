"""BASIS: batch-shared value estimation, one rollout per prompt, no critic.

BASIS, arXiv 2605.27293. The paper's exact estimator is not public; this module implements the
reconstruction specified in ALGORITHMS.md, each part switchable for ablation:

1. Offline prior from M reference samples per prompt, ``p0 = (k + 0.5) / (M + 1)``
   (:func:`prior_from_counts`).
2. Online calibration across the batch, ``V = sigmoid(a + b * logit p0)``, ``(a, b)`` fitted by
   a few Newton steps of ridge-penalised logistic regression toward ``(0, 1)``, warm-started
   from the previous step, cross-fitted so that ``V_i`` never uses ``r_i``
   (:func:`batch_values`, :func:`batch_values_with_state`).
3. Optional leave-one-out residual smoothing in prompt-embedding space
   (:func:`kernel_smoothed_values`).
4. ``A_i = (r_i - V_i) / (std(r - V) + eps)`` (:func:`advantages`); the loss is
   :func:`algorithms.losses.policy_loss`.

Two more, switchable with the same config (``value_estimator``, ``prior_source``):

5-8. ``blue``: BASIS as public summaries of the paper describe it (ALGORITHMS.md 5-8,
   :func:`algorithms.blue.blue_values`): V from p0 through the KL-optimal tilt, a temperature
   from a grid, a leave-one-out variance-weighted shift over the batch's active prompts. Which
   formulas the paper uses is not public; these are our reading of the summaries.
9. ``prior_source: online``: the prior follows the policy, a per-prompt discounted Beta posterior
   started at p0 (:class:`algorithms.online_prior.OnlinePrior`, after SPO, arXiv 2509.13232); our
   own addition, combined with any of the estimators above.

Every estimator is registered in :mod:`algorithms.estimators` (its math in
:mod:`algorithms.offline_values`, :mod:`algorithms.blue`, :mod:`algorithms.online_prior`); the
REINFORCE++ baseline is :func:`algorithms.batch_baselines.batch_mean_values` (Hu, arXiv 2501.03262).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

import algorithms.losses as losses
from algorithms.base import RLModule
from algorithms.batch_baselines import batch_mean_values
# CONTRACT.md names prior_from_counts, batch_values and blue_values as algorithms.basis.* (F401: re-exported).
from algorithms.blue import INACTIVE, OFFLINE_VALUES, blue_values, blue_values_with_beta, log_grid  # noqa: F401
from algorithms.config import AlgorithmConfig
from algorithms.offline_values import (  # noqa: F401
    batch_values,
    batch_values_with_state,
    calibrated_values,
    fit_calibration,
    fold_assignment,
    kernel_smoothed_values,
    prior_from_counts,
)
from algorithms.online_prior import OnlinePrior


def advantages(rewards: Tensor, values: Tensor, eps: float = 1e-6) -> Tensor:
    """``A_i = (r_i - V_i) / (std(r - V) + eps)``, std unbiased over the batch.

    A batch of one is not scaled (its std is undefined).

    Args:
        rewards: ``[B]``.
        values: ``[B]``.
        eps: added to the std.

    Returns:
        ``[B]``, dtype of ``values``.
    """
    residuals = rewards.to(values.dtype) - values
    if residuals.numel() < 2:
        return residuals
    return residuals / (residuals.std() + eps)


@torch.no_grad()
def prompt_embeddings(model: torch.nn.Module, input_ids: Tensor, attention_mask: Tensor,
                      position_ids: Tensor) -> Tensor:
    """Mean-pooled last hidden state of ``model.base_model`` over the given tokens.

    Shared by BASIS's kernel variant and the value diagnostic (:mod:`harness.diagnostic`).

    Args:
        model: a causal LM whose ``base_model`` returns ``last_hidden_state``.
        input_ids, attention_mask, position_ids: ``[N, P]`` left-padded prompts.

    Returns:
        ``[N, H]``; padding positions (mask 0) do not count.
    """
    hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask,
                              position_ids=position_ids, use_cache=False).last_hidden_state
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)


# --- the LightningModule ------------------------------------------------------------------
VALUE_ESTIMATORS = ("batch_mean", "prior", "calibrated", "calibrated_kernel", "blue")
PRIOR_SOURCES = ("offline", "online")


@dataclass
class BASISConfig(AlgorithmConfig):
    samples_per_prompt: int = 1
    value_estimator: str = "calibrated"
    """batch_mean (REINFORCE++) | prior | calibrated | calibrated_kernel | blue (after the public description)."""
    prior_source: str = "offline"
    """offline: p0 from the reference samples, fixed; online: each prompt's discounted Beta posterior,
    started at p0 and updated with its own rewards each time it is trained on (it follows the policy)."""
    online_discount: float = 0.8
    """Weight of a prompt's older evidence per visit in the online prior (1: never forget)."""
    offline_samples: int = 8
    """M reference samples per training prompt for the prior (shared with A*-PO when equal)."""
    folds: int = 2
    ridge: float = 1e-2
    newton_steps: int = 5
    kernel_bandwidth: float = 0.5
    kernel_ridge: float = 1.0
    blue_beta_min: float = 0.5
    """BLUE's temperature grid: `blue_beta_points` log-spaced values from min to max (one point: no search)."""
    blue_beta_max: float = 20.0
    blue_beta_points: int = 13
    blue_eps: float = 1e-3
    """BLUE's active set: eps < V < 1 - eps."""
    blue_inactive: str = "zero"
    """Baseline of an inactive prompt: zero (as described) | own (its V)."""
    blue_offline_value: str = "tilt"
    """tilt: sigmoid(logit p0 + 1/beta) | soft: A*-PO's beta * log(1 - p0 + p0 e^(1/beta))."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.value_estimator not in VALUE_ESTIMATORS:
            raise ValueError(f"value_estimator must be one of {VALUE_ESTIMATORS}, got {self.value_estimator!r}")
        if self.prior_source not in PRIOR_SOURCES:
            raise ValueError(f"prior_source must be one of {PRIOR_SOURCES}, got {self.prior_source!r}")
        if self.prior_source == "online" and self.value_estimator == "batch_mean":
            raise ValueError("prior_source 'online' needs a value_estimator that uses a prior, not batch_mean")
        if not 0 < self.online_discount <= 1:
            raise ValueError(f"online_discount must lie in (0, 1], got {self.online_discount}")
        if self.folds < 2:
            raise ValueError(f"folds must be >= 2 (cross-fitting), got {self.folds}")
        if self.blue_inactive not in INACTIVE:
            raise ValueError(f"blue_inactive must be one of {INACTIVE}, got {self.blue_inactive!r}")
        if self.blue_offline_value not in OFFLINE_VALUES:
            raise ValueError(f"blue_offline_value must be one of {OFFLINE_VALUES}, got {self.blue_offline_value!r}")
        if not 0 < self.blue_beta_min <= self.blue_beta_max or self.blue_beta_points < 1:
            raise ValueError("blue_beta_min, blue_beta_max must satisfy 0 < min <= max and blue_beta_points >= 1, got "
                             f"{self.blue_beta_min}, {self.blue_beta_max}, {self.blue_beta_points}")
        if not 0 <= self.blue_eps < 0.5:
            raise ValueError(f"blue_eps must lie in [0, 0.5), got {self.blue_eps}")


class BASIS(RLModule):
    name = "basis"
    config_class = BASISConfig

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prior: dict[str, float] = {}
        self.calibration = (0.0, 1.0)  # (a, b), warm start of the next fit
        self.blue_beta = float("nan")  # the temperature BLUE chose at the last step
        # Under DDP each process updates the posteriors of the prompts it trains on.
        self.online = OnlinePrior(self.config.online_discount)

    def offline_samples_per_prompt(self) -> int:
        return 0 if self.config.value_estimator == "batch_mean" else self.config.offline_samples

    def training_state(self) -> dict:
        state = {**super().training_state(), "prior": dict(self.prior), "calibration": list(self.calibration)}
        if self.config.prior_source == "online":
            state["online"] = self.online.state_dict()
        return state

    def load_training_state(self, state: dict) -> None:
        super().load_training_state(state)
        self.prior = dict(state["prior"])
        self.calibration = tuple(float(v) for v in state["calibration"])
        if "online" in state:
            self.online.load_state_dict(state["online"])

    def set_offline(self, stats: dict) -> None:
        ids = list(stats)
        correct = torch.tensor([sum(r > 0.5 for r in stats[i]) for i in ids])
        samples = torch.tensor([len(stats[i]) for i in ids])
        self.prior = dict(zip(ids, prior_from_counts(correct, samples).tolist()))
        self.online.start(stats)

    def prepare(self, batch, examples):
        # The batch-wide estimate uses the global batch: under DDP, every process gathers all
        # rewards (priors, embeddings), computes every value and keeps its own rows.
        c = self.config
        rewards, mine = self.global_batch(batch.rewards)
        if c.value_estimator == "batch_mean":
            batch.values = batch_mean_values(rewards)[mine]
            return
        ids = [ex.id for ex in examples]
        if c.prior_source == "online":  # read before this step's rewards join it: V_i never uses r_i
            prior = self.online.values(ids, rewards.dtype, rewards.device)
            self.online.update(ids, batch.rewards)
        else:
            prior = torch.tensor([self.prior[i] for i in ids], dtype=rewards.dtype, device=rewards.device)
        prior, _ = self.global_batch(prior)
        if c.value_estimator == "prior":
            batch.values = prior[mine]
            return
        if c.value_estimator == "blue":
            grid = log_grid(c.blue_beta_min, c.blue_beta_max, c.blue_beta_points, device=rewards.device)
            values, beta = blue_values_with_beta(rewards, prior, grid, c.blue_eps, c.blue_inactive,
                                                 c.blue_offline_value)
            self.blue_beta = float(beta)
            batch.values = values[mine]
            return
        values, (a, b) = batch_values_with_state(rewards, prior, c.folds, c.ridge, seed=self.seed * 7907 + self.rl_step,
                                                 init=self.calibration, newton_steps=c.newton_steps)
        self.calibration = (float(a), float(b))
        if c.value_estimator == "calibrated_kernel":
            fold_ids = fold_assignment(len(rewards), c.folds, self.seed * 7907 + self.rl_step, rewards.device)
            embeddings, _ = self.global_batch(self.prompt_embeddings(batch))
            values = kernel_smoothed_values(values, rewards, embeddings, c.kernel_bandwidth,
                                            c.kernel_ridge, fold_ids=fold_ids)
        batch.values = values[mine]

    def prompt_embeddings(self, batch) -> Tensor:
        """Embeddings of the batch's prompts under the current policy: [N, H] (see :func:`prompt_embeddings`)."""
        prompt_mask = batch.attention_mask[:, : batch.prompt_width]
        self.counters["forward_tokens"] += int(prompt_mask.sum())
        return prompt_embeddings(self.policy, batch.input_ids[:, : batch.prompt_width], prompt_mask,
                                 batch.position_ids[:, : batch.prompt_width])

    def advantages(self, batch):
        rewards, mine = self.global_batch(batch.rewards)
        values, _ = self.global_batch(batch.values)
        return advantages(rewards, values)[mine][:, None] * batch.response_mask  # std over the global batch

    def loss(self, batch, logp, entropy, denominators):
        c = self.config
        loss, stats = losses.policy_loss(logp, batch.old_logp, batch.advantages, batch.response_mask, c.clip_eps,
                                         c.loss_agg, c.kl_coef, batch.ref_logp, c.kl_kind, **denominators)
        stats = {"policy_loss": stats["policy_loss"],
                 "value_mse": float(((batch.rewards - batch.values) ** 2).mean()),
                 "calibration_a": self.calibration[0], "calibration_b": self.calibration[1],
                 **({"kl_ref": stats["kl_ref"]} if "kl_ref" in stats else {})}
        if c.value_estimator == "blue":
            stats["blue_beta"] = self.blue_beta
        return loss, stats
