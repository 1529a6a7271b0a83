"""Value (baseline) estimators of a prompt's success probability, in one place, registered by name.

Pure functions on tensors come first (shapes in the docstrings; float32 or float64 in, same dtype
out). Algorithms import them (REINFORCE++ the batch mean, RLOO the leave-one-out mean, BASIS the
prior, the calibration, the kernel, BLUE and the online prior, A*-PO V*), and the value
diagnostic (``harness.diagnostic``) iterates :data:`ESTIMATORS`, the registered adapters at the
end, instead of re-stating any of them.

Sources:
- batch mean: REINFORCE++ (Hu, arXiv 2501.03262), one rollout per prompt.
- group mean: GRPO (arXiv 2402.03300); leave-one-out: RLOO (Ahmadian et al., arXiv 2402.14740).
- V*: A*-PO (Brantley et al., arXiv 2505.20686).
- prior, calibrated, kernel: this project's reconstruction of BASIS (arXiv 2605.27293; its text
  and code are not public), ALGORITHMS.md steps 1-3.
- BLUE: BASIS after public summaries of the paper (ALGORITHMS.md steps 5-8). A reconstruction:
  the summaries name the parts (V* tilt of the offline rate, a temperature from a grid by squared
  error, a leave-one-out variance-weighted shift, an active set), not their exact formulas.
- online: a per-prompt discounted Beta posterior started from the offline prior, after SPO
  (arXiv 2509.13232); our choice of how it meets BASIS, not the paper's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

_PRIOR_CLAMP = 1e-6  # keeps logit(p0) finite for priors given by the caller


def _float_dtype(*tensors: Tensor) -> torch.dtype:
    floating = [t.dtype for t in tensors if isinstance(t, Tensor) and t.is_floating_point()]
    return floating[0] if floating else torch.float32


def _logit(p: Tensor) -> Tensor:
    p = p.clamp(_PRIOR_CLAMP, 1.0 - _PRIOR_CLAMP)
    return torch.log(p) - torch.log1p(-p)


# --- online rollouts only ------------------------------------------------------------------

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
    rewards = rewards.to(_float_dtype(rewards))
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
    return rewards.to(_float_dtype(rewards)).view(-1, group_size)


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
    dtype = _float_dtype(correct, samples)
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
    return torch.sigmoid(a + b * _logit(prior)).to(prior.dtype)


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
    dtype = _float_dtype(rewards, prior)
    rewards = rewards.to(dtype)
    weights = torch.ones_like(rewards).unsqueeze(0)
    theta = _fit(_logit(prior.to(dtype)), rewards, weights, init, ridge, newton_steps)[0]
    return theta[0], theta[1]


def fold_assignment(batch_size: int, folds: int = 2, seed: int = 0,
                    device: torch.device | str | None = None) -> Tensor:
    """Balanced random fold ids ``[B]`` in ``0..folds-1``, reproducible from ``seed``.

    Drawn with a CPU ``torch.Generator`` so that every device and rank gets the same folds.
    """
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(batch_size, generator=generator)
    fold_ids = torch.empty(batch_size, dtype=torch.long)
    fold_ids[order] = torch.arange(batch_size) % folds
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
    dtype = _float_dtype(rewards, prior)
    rewards = rewards.to(dtype)
    x = _logit(prior.to(dtype))
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


# --- BASIS after its public description (ALGORITHMS.md steps 5-8): BLUE ----------------------
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
        return torch.sigmoid(_logit(prior) + 1.0 / beta)
    if kind == "soft":
        p = prior.clamp(_PRIOR_CLAMP, 1.0 - _PRIOR_CLAMP)
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
    dtype = _float_dtype(rewards, prior)
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


def log_grid(low: float, high: float, points: int) -> Tensor:
    """``points`` log-spaced values from ``low`` to ``high`` (float64); one point gives ``low``."""
    if not 0 < low <= high or points < 1:
        raise ValueError(f"a log grid needs 0 < low <= high and points >= 1, got {low}, {high}, {points}")
    if points == 1:
        return torch.tensor([low], dtype=torch.float64)
    return torch.logspace(math.log10(low), math.log10(high), points, dtype=torch.float64)


# --- an online prior that follows the policy (SPO-style) ------------------------------------

def beta_posterior_update(alpha: Tensor, beta: Tensor, rewards: Tensor, discount: float) -> tuple[Tensor, Tensor]:
    """One discounted Beta-posterior step per prompt: ``alpha <- d * alpha + r``,
    ``beta <- d * beta + (1 - r)``.

    Old evidence fades by ``d`` per visit, so the mean ``alpha / (alpha + beta)`` follows a
    policy whose success rate moves (SPO, arXiv 2509.13232, tracks its baseline this way).

    Args:
        alpha, beta: ``[P]`` pseudo-counts of the prompts seen.
        rewards: ``[P]`` their new rewards in [0, 1].
        discount: d in (0, 1].

    Returns:
        ``(alpha [P], beta [P])``.
    """
    if not 0 < discount <= 1:
        raise ValueError(f"discount must lie in (0, 1], got {discount}")
    rewards = rewards.to(alpha.dtype)
    return discount * alpha + rewards, discount * beta + (1.0 - rewards)


class OnlinePrior:
    """Per-prompt discounted Beta posteriors, started from the offline counts.

    A prompt with k of M reference samples correct starts at ``Beta(k + 0.5, M - k + 0.5)``,
    whose mean is :func:`prior_from_counts`'s p0. :meth:`values` is read *before* a step's
    rewards are added with :meth:`update`, so a baseline never uses its own reward. Plain floats
    in a dict: the state goes into checkpoints as is.
    """

    def __init__(self, discount: float = 0.8):
        if not 0 < discount <= 1:
            raise ValueError(f"discount must lie in (0, 1], got {discount}")
        self.discount = discount
        self.counts: dict[str, tuple[float, float]] = {}

    def start(self, offline_rewards: dict[str, list[float]]) -> None:
        for key, rewards in offline_rewards.items():
            correct = float(sum(r > 0.5 for r in rewards))
            self.counts[key] = (correct + 0.5, len(rewards) - correct + 0.5)

    def values(self, ids: list[str], dtype: torch.dtype = torch.float64, device=None) -> Tensor:
        """``[P]`` posterior means of the prompts ``ids``."""
        counts = torch.tensor([self.counts[i] for i in ids], dtype=torch.float64)
        return (counts[:, 0] / counts.sum(-1)).to(dtype=dtype, device=device)

    def update(self, ids: list[str], rewards: Tensor) -> None:
        """Add one reward per prompt (a prompt listed twice gets both, in order)."""
        for key, reward in zip(ids, rewards.detach().to("cpu", torch.float64).tolist()):
            alpha, beta = self.counts[key]
            a, b = beta_posterior_update(torch.tensor([alpha], dtype=torch.float64),
                                         torch.tensor([beta], dtype=torch.float64),
                                         torch.tensor([reward], dtype=torch.float64), self.discount)
            self.counts[key] = (float(a), float(b))

    def state_dict(self) -> dict:
        return {"discount": self.discount, "counts": {k: list(v) for k, v in self.counts.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.discount = float(state["discount"])
        self.counts = {k: (float(v[0]), float(v[1])) for k, v in state["counts"].items()}


# --- the registry: every estimator on the same inputs ----------------------------------------

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
