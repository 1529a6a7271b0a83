"""The value (baseline) estimators, registered by name on one input type.

The math lives in pure-function modules, verl ``core_algos`` style (shapes in their docstrings;
float32 or float64 in, same dtype out):

- :mod:`algorithms.batch_baselines`: batch mean (REINFORCE++), group mean (GRPO), leave-one-out (RLOO);
- :mod:`algorithms.offline_values`: BASIS's prior, calibration and kernel (this project's
  reconstruction, ALGORITHMS.md steps 1-3) and A*-PO's V*;
- :mod:`algorithms.blue`: BASIS's BLUE after public summaries of the paper (steps 5-8);
- :mod:`algorithms.online_prior`: the discounted Beta posterior that follows the policy (after SPO).

This module registers an adapter of each on :class:`EstimatorInputs` in :data:`ESTIMATORS`, which
the value diagnostic (``harness.diagnostic``) iterates instead of re-stating any of them, and
re-exports the math under ``algorithms.estimators.<name>``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from algorithms.batch_baselines import batch_mean_values, group_mean_values, leave_one_out_values
from algorithms.blue import (
    INACTIVE,
    OFFLINE_VALUES,
    blue_shift,
    blue_values,
    blue_values_with_beta,
    log_grid,
    tilted_values,
)
from algorithms.offline_values import (
    batch_values,
    batch_values_with_state,
    calibrated_values,
    fit_calibration,
    fold_assignment,
    kernel_smoothed_values,
    optimal_values,
    prior_from_counts,
)
from algorithms.online_prior import OnlinePrior, beta_posterior_update

__all__ = [
    # the registry
    "ESTIMATORS", "Estimator", "EstimatorInputs", "names", "register",
    # the math, re-exported from its modules
    "INACTIVE", "OFFLINE_VALUES", "OnlinePrior", "batch_mean_values", "batch_values",
    "batch_values_with_state", "beta_posterior_update", "blue_shift", "blue_values", "blue_values_with_beta",
    "calibrated_values", "fit_calibration", "fold_assignment", "group_mean_values",
    "kernel_smoothed_values", "leave_one_out_values", "log_grid", "optimal_values", "prior_from_counts",
    "tilted_values",
]


@dataclass
class EstimatorInputs:
    """What an estimator may use for P prompts; each one uses a part.

    rewards: ``[P]`` one online rollout per prompt (the one-rollout batch).
    group_rewards: ``[P, n]`` n online rollouts per prompt (``rewards`` is column 0), or None.
    offline_rewards: ``[P, M]`` rewards of M reference samples per prompt.
    embeddings: ``[P, H]`` prompt embeddings under the current policy, or None.
    online_prior: ``[P]`` the online posterior means before this step (:class:`OnlinePrior`), or None.
    seed: fold seed of the cross-fitted estimators.
    """

    rewards: Tensor
    offline_rewards: Tensor
    group_rewards: Tensor | None = None
    embeddings: Tensor | None = None
    online_prior: Tensor | None = None
    seed: int = 0


Estimator = Callable[[EstimatorInputs], "Tensor | None"]
ESTIMATORS: dict[str, Estimator] = {}
"""name -> estimator ``EstimatorInputs -> [P]`` (None when its inputs are missing)."""

# The diagnostic's settings: BASIS's and A*-PO's defaults.
FOLDS = 2
A_STAR_PO_BETA1 = 0.5
BLUE_BETAS = (0.5, 20.0, 13)  # low, high, points of the log grid


def register(name: str) -> Callable[[Estimator], Estimator]:
    def add(fn: Estimator) -> Estimator:
        if name in ESTIMATORS:
            raise ValueError(f"estimator {name!r} is registered twice")
        ESTIMATORS[name] = fn
        return fn
    return add


def names() -> list[str]:
    return list(ESTIMATORS)


def _prior(x: EstimatorInputs) -> Tensor:
    return prior_from_counts((x.offline_rewards > 0.5).sum(-1), x.offline_rewards.shape[-1]).to(x.rewards.dtype)


@register("batch_mean")
def _batch_mean(x: EstimatorInputs) -> Tensor:
    return batch_mean_values(x.rewards)


@register("group_mean")
def _group_mean(x: EstimatorInputs) -> Tensor | None:
    return None if x.group_rewards is None else x.group_rewards.mean(-1)


@register("leave_one_out")
def _leave_one_out(x: EstimatorInputs) -> Tensor | None:
    # Sample 0's baseline from the other n - 1 samples of its prompt (RLOO's).
    if x.group_rewards is None or x.group_rewards.shape[-1] < 2:
        return None
    return leave_one_out_values(x.group_rewards.reshape(-1), x.group_rewards.shape[-1]).view_as(x.group_rewards)[:, 0]


@register("prior")
def _prior_estimator(x: EstimatorInputs) -> Tensor:
    return _prior(x)


@register("calibrated")
def _calibrated(x: EstimatorInputs) -> Tensor:
    return batch_values(x.rewards, _prior(x), folds=FOLDS, seed=x.seed)


@register("calibrated_kernel")
def _calibrated_kernel(x: EstimatorInputs) -> Tensor | None:
    if x.embeddings is None:
        return None
    fold_ids = fold_assignment(len(x.rewards), FOLDS, x.seed, x.rewards.device)
    return kernel_smoothed_values(_calibrated(x), x.rewards, x.embeddings.to(x.rewards.device), fold_ids=fold_ids)


@register("blue")
def _blue(x: EstimatorInputs) -> Tensor:
    return blue_values(x.rewards, _prior(x), log_grid(*BLUE_BETAS))


@register("online")
def _online(x: EstimatorInputs) -> Tensor | None:
    return None if x.online_prior is None else x.online_prior.to(x.rewards.dtype)


@register("online_blue")
def _online_blue(x: EstimatorInputs) -> Tensor | None:
    if x.online_prior is None:
        return None
    return blue_values(x.rewards, x.online_prior.to(x.rewards.dtype), log_grid(*BLUE_BETAS))


@register("a_star_po_v_star")
def _v_star(x: EstimatorInputs) -> Tensor:
    return optimal_values(x.offline_rewards, A_STAR_PO_BETA1).to(x.rewards.dtype)
