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
   :func:`algorithms.losses.clipped_surrogate`.

The REINFORCE++ comparison baseline is :func:`batch_mean_values` (Hu, "REINFORCE++",
arXiv 2501.03262).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from algorithms import losses
from algorithms.base import AlgorithmConfig, RLModule

_PRIOR_CLAMP = 1e-6  # keeps logit(p0) finite for priors given by the caller


def _float_dtype(*tensors: Tensor) -> torch.dtype:
    floating = [t.dtype for t in tensors if isinstance(t, Tensor) and t.is_floating_point()]
    return floating[0] if floating else torch.float32


def _logit(p: Tensor) -> Tensor:
    p = p.clamp(_PRIOR_CLAMP, 1.0 - _PRIOR_CLAMP)
    return torch.log(p) - torch.log1p(-p)


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
    ``newton_steps`` plain Newton steps start from ``init`` (the previous step's fit).

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


def batch_mean_values(rewards: Tensor, leave_one_out: bool = True) -> Tensor:
    """REINFORCE++-style single-rollout baseline: the batch mean reward.

    By default each prompt's baseline is the mean of the *other* rewards,
    ``(sum_j r_j - r_i) / (B - 1)``, so that, like the BASIS estimators, it never uses ``r_i``
    and the policy gradient stays unbiased; ``leave_one_out=False`` gives REINFORCE++'s plain
    batch mean. A batch of one gets 0 with ``leave_one_out``.

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
VALUE_ESTIMATORS = ("batch_mean", "prior", "calibrated", "calibrated_kernel")


@dataclass
class BASISConfig(AlgorithmConfig):
    samples_per_prompt: int = 1
    value_estimator: str = "calibrated"
    """batch_mean (REINFORCE++) | prior | calibrated | calibrated_kernel."""
    offline_samples: int = 8
    """M reference samples per training prompt for the prior (shared with A*-PO when equal)."""
    folds: int = 2
    ridge: float = 1e-2
    newton_steps: int = 5
    kernel_bandwidth: float = 0.5
    kernel_ridge: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.value_estimator not in VALUE_ESTIMATORS:
            raise ValueError(f"value_estimator must be one of {VALUE_ESTIMATORS}, got {self.value_estimator!r}")
        if self.folds < 2:
            raise ValueError(f"folds must be >= 2 (cross-fitting), got {self.folds}")


class BASIS(RLModule):
    config_class = BASISConfig

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prior: dict[str, float] = {}
        self.calibration = (0.0, 1.0)  # (a, b), warm start of the next fit

    def offline_samples_per_prompt(self) -> int:
        return 0 if self.config.value_estimator == "batch_mean" else self.config.offline_samples

    def training_state(self) -> dict:
        return {**super().training_state(), "prior": dict(self.prior), "calibration": list(self.calibration)}

    def load_training_state(self, state: dict) -> None:
        super().load_training_state(state)
        self.prior = dict(state["prior"])
        self.calibration = tuple(float(v) for v in state["calibration"])

    def set_offline(self, stats: dict) -> None:
        ids = list(stats)
        correct = torch.tensor([sum(r > 0.5 for r in stats[i]) for i in ids])
        samples = torch.tensor([len(stats[i]) for i in ids])
        self.prior = dict(zip(ids, prior_from_counts(correct, samples).tolist()))

    def prepare(self, batch, examples):
        # The batch-wide estimate uses the global batch: under DDP, every process gathers all
        # rewards (priors, embeddings), computes every value and keeps its own rows.
        c = self.config
        rewards, mine = self.global_batch(batch.rewards)
        if c.value_estimator == "batch_mean":
            batch.values = batch_mean_values(rewards)[mine]
            return
        prior = torch.tensor([self.prior[ex.id] for ex in examples], dtype=rewards.dtype, device=rewards.device)
        prior, _ = self.global_batch(prior)
        if c.value_estimator == "prior":
            batch.values = prior[mine]
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
        mask = batch.response_mask
        loss = losses.clipped_surrogate(logp, batch.old_logp, batch.advantages, mask, c.clip_eps, c.loss_agg,
                                        **denominators)
        stats = {"policy_loss": float(loss.detach()),
                 "value_mse": float(((batch.rewards - batch.values) ** 2).mean()),
                 "calibration_a": self.calibration[0], "calibration_b": self.calibration[1]}
        if c.kl_coef > 0:
            kl = losses.aggregate(losses.kl_penalty(logp, batch.ref_logp, c.kl_kind), mask, c.loss_agg, **denominators)
            stats["kl_ref"] = float(kl.detach())
            loss = loss + c.kl_coef * kl
        return loss, stats
