"""BLUE baselines: BASIS after public summaries of the paper (ALGORITHMS.md steps 5-8).

A reconstruction: the summaries name the parts (V* tilt of the offline rate, a temperature from a
grid by squared error, a leave-one-out variance-weighted shift, an active set), not their exact
formulas (BASIS, arXiv 2605.27293). Pure functions on tensors; registered for the value diagnostic
in :mod:`algorithms.estimators`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from algorithms.batch_baselines import float_dtype
from algorithms.offline_values import PRIOR_CLAMP, logit

OFFLINE_VALUES = ("tilt", "soft")
INACTIVE = ("zero", "own")


def tilted_values(prior: Tensor, beta: Tensor | float, kind: str = "tilt") -> Tensor:
    """Value of the KL-regularised optimal policy from the reference success rate p0.

    ``tilt``: ``sigmoid(logit p0 + 1 / beta)``, the success probability of ``pi_ref`` tilted by
    ``exp(r / beta)``; ``soft``: A*-PO's soft value ``beta * log(1 - p0 + p0 e^{1/beta})``.
    Both tend to p0 as ``beta -> inf``. Which one the paper uses is not public.

    Args:
        prior: ``[B]`` p0 in (0, 1).
        beta: a float or ``[G, 1]`` grid (broadcast against ``[B]``).
        kind: ``"tilt"`` | ``"soft"``.

    Returns:
        ``[B]`` (or ``[G, B]``), dtype of ``prior``.
    """
    beta = torch.as_tensor(beta, dtype=prior.dtype, device=prior.device)
    if kind == "tilt":
        return torch.sigmoid(logit(prior) + 1.0 / beta)
    if kind == "soft":
        p = prior.clamp(PRIOR_CLAMP, 1.0 - PRIOR_CLAMP)
        # beta * log(1 - p + p e^{1/beta}) = beta * logaddexp(log(1 - p), log p + 1 / beta)
        return beta * torch.logaddexp(torch.log1p(-p), torch.log(p) + 1.0 / beta)
    raise ValueError(f"unknown offline value kind {kind!r}; valid: {', '.join(OFFLINE_VALUES)}")


def blue_shift(values: Tensor, rewards: Tensor, eps: float = 1e-3, inactive: str = "zero") -> Tensor:
    """Leave-one-out, variance-weighted common shift of the values (BASIS step 7).

    ``b_i = V_i + sum_{j != i, j active} w_j (r_j - V_j) / sum_{j != i, j active} w_j``,
    ``w_j = 1 / (V_j (1 - V_j))`` (the inverse Bernoulli variance: the best linear unbiased
    estimate of a shift shared by all prompts), active when ``eps < V_j < 1 - eps``. An
    inactive prompt's baseline is 0 (``inactive="zero"``, as described) or its own ``V_i``
    (``"own"``); an active prompt with no other active prompt keeps ``V_i``. ``b_i`` never
    depends on ``r_i``.

    Args:
        values: ``[..., B]`` V (a leading grid dimension is allowed).
        rewards: ``[B]``.
        eps: active-set margin.
        inactive: ``"zero"`` | ``"own"``.

    Returns:
        ``[..., B]`` baselines.
    """
    if inactive not in INACTIVE:
        raise ValueError(f"inactive must be one of {INACTIVE}, got {inactive!r}")
    rewards = rewards.to(values.dtype)
    active = (values > eps) & (values < 1.0 - eps)
    weights = torch.where(active, 1.0 / (values * (1.0 - values)).clamp_min(1e-12), torch.zeros_like(values))
    weighted = weights * (rewards - values)
    # Sums over j != i with an exact zero in place i (not total minus own term, whose rounding
    # would carry r_i): O(B^2), small next to a step.
    others = 1.0 - torch.eye(values.shape[-1], dtype=values.dtype, device=values.device)
    others_weight = weights @ others
    others_shift = weighted @ others
    has_others = others_weight > 0
    shift = torch.where(has_others, others_shift / torch.where(has_others, others_weight, torch.ones_like(values)),
                        torch.zeros_like(values))
    fallback = torch.zeros_like(values) if inactive == "zero" else values
    return torch.where(active, values + shift, fallback)


def blue_values_with_beta(rewards: Tensor, prior: Tensor, betas: Tensor | list[float], eps: float = 1e-3,
                          inactive: str = "zero", offline_value: str = "tilt") -> tuple[Tensor, Tensor]:
    """BLUE baselines and the temperature chosen from the grid (BASIS steps 5-7).

    For each ``beta`` of the grid: ``V(beta)`` by :func:`tilted_values`, baselines by
    :func:`blue_shift`; the grid point with the least ``sum_i (r_i - b_i)^2`` wins (the first
    on ties). Each ``b_i`` is leave-one-out; the choice of beta sees the whole batch, r_i
    included, so with a grid of more than one point b_i depends weakly on r_i (a bias of the
    order of one prompt in the batch; one beta removes it).

    Args:
        rewards: ``[B]``.
        prior: ``[B]`` offline (or online) success rates p0.
        betas: ``[G]`` grid (one value = no search).
        eps, inactive: see :func:`blue_shift`.
        offline_value: ``"tilt"`` | ``"soft"``, see :func:`tilted_values`.

    Returns:
        ``(baselines [B], beta)`` with ``beta`` a 0-dim tensor.
    """
    dtype = float_dtype(rewards, prior)
    rewards, prior = rewards.to(dtype), prior.to(dtype)
    grid = torch.as_tensor(betas, dtype=dtype, device=rewards.device).reshape(-1)
    if grid.numel() == 0 or bool((grid <= 0).any()):
        raise ValueError(f"betas must be a non-empty grid of positive temperatures, got {grid.tolist()}")
    baselines = blue_shift(tilted_values(prior, grid[:, None], offline_value), rewards, eps, inactive)  # [G, B]
    best = ((rewards - baselines) ** 2).sum(-1).argmin()
    return baselines[best], grid[best]


def blue_values(rewards: Tensor, prior: Tensor, betas: Tensor | list[float], eps: float = 1e-3,
                inactive: str = "zero", offline_value: str = "tilt") -> Tensor:
    """BLUE baselines ``[B] x2 -> [B]``; see :func:`blue_values_with_beta`."""
    return blue_values_with_beta(rewards, prior, betas, eps, inactive, offline_value)[0]


def log_grid(low: float, high: float, points: int, device=None) -> Tensor:
    """``points`` log-spaced values from ``low`` to ``high`` (float64, on ``device``); one point gives ``low``."""
    if not 0 < low <= high or points < 1:
        raise ValueError(f"a log grid needs 0 < low <= high and points >= 1, got {low}, {high}, {points}")
    if points == 1:
        return torch.tensor([low], dtype=torch.float64, device=device)
    return torch.logspace(math.log10(low), math.log10(high), points, dtype=torch.float64, device=device)

