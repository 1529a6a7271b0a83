"""Values from offline reference samples: BASIS's prior p0, its calibration on the batch, A*-PO's V*.

Pure functions on tensors (shapes in the docstrings). The prior, the calibration and the kernel
are this project's reconstruction of BASIS (arXiv 2605.27293; its text and code are not public),
ALGORITHMS.md steps 1-3; V* is A*-PO's (Brantley et al., arXiv 2505.20686). Registered for the
value diagnostic in :mod:`algorithms.estimators`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from algorithms.batch_baselines import float_dtype

PRIOR_CLAMP = 1e-6  # keeps logit(p0) finite for priors given by the caller


def logit(p: Tensor) -> Tensor:
    """``log(p / (1 - p))`` with p clamped to ``[PRIOR_CLAMP, 1 - PRIOR_CLAMP]``: finite for any prior."""
    p = p.clamp(PRIOR_CLAMP, 1.0 - PRIOR_CLAMP)
    return torch.log(p) - torch.log1p(-p)


# --- offline reference samples --------------------------------------------------------------

def prior_from_counts(correct: Tensor, samples: int | Tensor) -> Tensor:
    """Offline prior success probability ``p0 = (k + 0.5) / (M + 1)``.

    Args:
        correct: ``[P]`` number k of correct reference samples per prompt.
        samples: M, the number of reference samples (an int or ``[P]``).

    Returns:
        ``[P]``, float32 unless ``correct`` or ``samples`` is a floating tensor (then its dtype).
    """
    samples = torch.as_tensor(samples, device=correct.device)
    if bool((correct < 0).any()) or bool((correct > samples).any()):
        raise ValueError("correct counts must lie in [0, samples]")
    dtype = float_dtype(correct, samples)
    return (correct.to(dtype) + 0.5) / (samples.to(dtype) + 1.0)


def optimal_values(rewards: Tensor, beta1: float = 0.5) -> Tensor:
    """A*-PO's ``V*(x) = beta1 * (logsumexp(r / beta1) - log N)`` per prompt.

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


# --- BASIS as this project reconstructed it (ALGORITHMS.md steps 1-3) ------------------------

def calibrated_values(prior: Tensor, a: float | Tensor, b: float | Tensor) -> Tensor:
    """``V = sigmoid(a + b * logit(p0))``.

    Args:
        prior: ``[B]`` p0.
        a, b: calibration intercept and slope (``a = 0, b = 1`` returns the prior).

    Returns:
        ``[B]``, dtype of ``prior``.
    """
    return torch.sigmoid(a + b * logit(prior)).to(prior.dtype)


def _fit(x: Tensor, rewards: Tensor, weights: Tensor, init: tuple[float, float] | Tensor,
         ridge: float, newton_steps: int) -> Tensor:
    """K weighted ridge logistic fits at once; ``weights [K, B]`` -> ``theta [K, 2]``.

    Minimises, for each row k, ``sum_i w_ki * logloss(r_i, a + b x_i) / sum_i w_ki
    + ridge / 2 * (a^2 + (b - 1)^2)``. A weight of exactly 0 adds exact zeros to every sum, so
    a fit never depends on the rewards it excludes.

    Each Newton step is damped by a vectorised backtracking search: the objective is evaluated
    at step sizes 1, 1/2, ..., 1/32 and 0 and the best is kept. Pure Newton oscillates and
    diverges on small, nearly separable folds (common with binary rewards); the search makes
    every step a descent step, without a data-dependent branch (no GPU sync).
    """
    theta = torch.as_tensor(init, dtype=x.dtype, device=x.device).reshape(1, 2)
    theta = theta.expand(weights.shape[0], 2)
    target = torch.tensor([0.0, 1.0], dtype=x.dtype, device=x.device)
    step_sizes = torch.tensor([1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.0],
                              dtype=x.dtype, device=x.device)
    count = weights.sum(-1).clamp_min(1.0)
    rows = torch.arange(weights.shape[0], device=x.device)
    for _ in range(newton_steps):
        a, b = theta[:, :1], theta[:, 1:]
        p = torch.sigmoid(a + b * x)
        residual = weights * (p - rewards)
        g_a = residual.sum(-1) / count + ridge * a[:, 0]
        g_b = (residual * x).sum(-1) / count + ridge * (b[:, 0] - 1.0)
        curvature = weights * p * (1.0 - p)
        h_aa = curvature.sum(-1) / count + ridge
        h_ab = (curvature * x).sum(-1) / count
        h_bb = (curvature * x * x).sum(-1) / count + ridge
        det = h_aa * h_bb - h_ab * h_ab
        newton = torch.stack([(h_bb * g_a - h_ab * g_b) / det,
                              (h_aa * g_b - h_ab * g_a) / det], dim=-1)
        candidates = theta.unsqueeze(1) - step_sizes[:, None] * newton.unsqueeze(1)  # [K, S, 2]
        z = candidates[..., :1] + candidates[..., 1:] * x  # [K, S, B]
        log_loss = torch.nn.functional.softplus(z) - rewards * z
        objective = (weights.unsqueeze(1) * log_loss).sum(-1) / count[:, None]
        objective = objective + 0.5 * ridge * ((candidates - target) ** 2).sum(-1)
        theta = candidates[rows, objective.argmin(-1)]
    return theta


def fit_calibration(prior: Tensor, rewards: Tensor, init: tuple[float, float] = (0.0, 1.0),
                    ridge: float = 1e-2, newton_steps: int = 5) -> tuple[Tensor, Tensor]:
    """Fit ``(a, b)`` of ``r ~ Bernoulli(sigmoid(a + b * logit p0))`` on a batch.

    Objective: mean log-loss over the batch ``+ ridge / 2 * (a^2 + (b - 1)^2)``, so the
    penalty pulls toward the uncalibrated prior and its weight does not depend on the batch
    size; ``ridge > 0`` also keeps the 2x2 Newton system invertible when all priors are equal.
    ``newton_steps`` damped Newton steps start from ``init`` (the previous step's fit).

    Args:
        prior: ``[B]`` p0.
        rewards: ``[B]`` rewards in [0, 1].
        init: starting ``(a, b)``.
        ridge: penalty strength.
        newton_steps: number of Newton steps.

    Returns:
        ``(a, b)`` as 0-dim tensors of the rewards' float dtype, on their device.
    """
    dtype = float_dtype(rewards, prior)
    rewards = rewards.to(dtype)
    weights = torch.ones_like(rewards).unsqueeze(0)
    theta = _fit(logit(prior.to(dtype)), rewards, weights, init, ridge, newton_steps)[0]
    return theta[0], theta[1]


def fold_assignment(batch_size: int, folds: int = 2, seed: int = 0,
                    device: torch.device | str | None = None) -> Tensor:
    """Balanced random fold ids ``[B]`` in ``0..folds-1``, reproducible from ``seed``.

    Drawn with a CPU ``torch.Generator`` so that every device and rank gets the same folds.
    """
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(batch_size, generator=generator, device="cpu")
    fold_ids = torch.empty(batch_size, dtype=torch.long, device="cpu")
    fold_ids[order] = torch.arange(batch_size, device="cpu") % folds
    return fold_ids.to(device)


def batch_values_with_state(
    rewards: Tensor,
    prior: Tensor,
    folds: int = 2,
    ridge: float = 1e-2,
    seed: int = 0,
    init: tuple[float, float] = (0.0, 1.0),
    newton_steps: int = 5,
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """Cross-fitted calibrated values plus the full-batch fit for warm-starting the next step.

    Prompts are split into ``folds`` balanced random folds (:func:`fold_assignment` with
    ``seed``; vary the seed per step). For each fold, ``(a, b)`` is fitted on the other folds
    and ``V_i = sigmoid(a + b * logit p0_i)`` predicted for the prompts of this fold, so
    ``V_i`` never depends on ``r_i``. All fits run at once as a batched Newton iteration.

    Args:
        rewards: ``[B]`` rewards of the batch (the global batch under DDP).
        prior: ``[B]`` p0 of each prompt.
        folds: number of folds, at least 2.
        ridge, newton_steps: see :func:`fit_calibration`.
        seed: seed of the fold assignment.
        init: starting ``(a, b)`` of every fit.

    Returns:
        ``(values [B], (a, b))``; ``(a, b)`` is fitted on the whole batch, for the next ``init``.
    """
    if folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {folds}")
    dtype = float_dtype(rewards, prior)
    rewards = rewards.to(dtype)
    x = logit(prior.to(dtype))
    fold_ids = fold_assignment(rewards.shape[0], folds, seed, rewards.device)
    fold_range = torch.arange(folds, device=rewards.device).unsqueeze(-1)
    weights = (fold_ids.unsqueeze(0) != fold_range).to(dtype)  # row k: every fold but k
    weights = torch.cat([weights, torch.ones_like(rewards).unsqueeze(0)])  # last: full batch
    theta = _fit(x, rewards, weights, init, ridge, newton_steps)
    a, b = theta[fold_ids, 0], theta[fold_ids, 1]
    values = torch.sigmoid(a + b * x)
    return values, (theta[-1, 0], theta[-1, 1])


def batch_values(rewards: Tensor, prior: Tensor, folds: int = 2, ridge: float = 1e-2,
                 seed: int = 0, init: tuple[float, float] = (0.0, 1.0),
                 newton_steps: int = 5) -> Tensor:
    """Cross-fitted calibrated values ``[B] -> [B]``; see :func:`batch_values_with_state`."""
    values, _ = batch_values_with_state(rewards, prior, folds, ridge, seed, init, newton_steps)
    return values


def kernel_smoothed_values(values: Tensor, rewards: Tensor, embeddings: Tensor,
                           bandwidth: float = 0.5, ridge: float = 1.0,
                           fold_ids: Tensor | None = None) -> Tensor:
    """Add a leave-one-out kernel average of neighbours' residuals to each value.

    With ``e_j = r_j - V_j``, cosine similarity ``s_ij`` of the embeddings and kernel
    ``k_ij = exp((s_ij - 1) / bandwidth)`` (1 for identical directions), ``k_ii = 0``:
    ``V'_i = V_i + sum_j k_ij e_j / (sum_j k_ij + ridge)``. The ridge shrinks the correction
    toward 0 when a prompt has few close neighbours.

    ``V'_i`` never uses ``r_i`` as long as no ``V_j`` with ``k_ij > 0`` does. That holds for
    prior-only values; for cross-fitted values pass the ``fold_ids`` used to fit them
    (:func:`fold_assignment` with the same seed), which restricts neighbours to the same fold,
    whose values were all fitted without ``r_i``.

    Args:
        values: ``[B]`` values V.
        rewards: ``[B]``.
        embeddings: ``[B, D]`` prompt embeddings.
        bandwidth: kernel bandwidth h.
        ridge: shrinkage c.
        fold_ids: optional ``[B]`` fold ids; only same-fold neighbours count.

    Returns:
        ``[B]`` smoothed values (not clipped to [0, 1]).
    """
    unit = torch.nn.functional.normalize(embeddings.to(values.dtype), dim=-1)
    kernel = torch.exp((unit @ unit.T - 1.0) / bandwidth)
    kernel = kernel.masked_fill(torch.eye(len(values), dtype=torch.bool,
                                          device=values.device), 0.0)
    if fold_ids is not None:
        kernel = kernel * (fold_ids.unsqueeze(0) == fold_ids.unsqueeze(1)).to(kernel.dtype)
    residuals = rewards.to(values.dtype) - values
    return values + (kernel @ residuals) / (kernel.sum(-1) + ridge)

