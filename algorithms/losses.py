"""Shared loss math for every algorithm: KL estimators, loss aggregation, the clipped surrogate,
log-probs from logits (or, chunked, from hidden states).

Pure functions on tensors, float32 or float64 in, same dtype out, CPU or GPU. Each algorithm
module imports these instead of re-implementing them.

References:
- PPO clipped surrogate: Schulman et al., "Proximal Policy Optimization Algorithms",
  arXiv 1707.06347.
- GRPO and the k3 in-loss KL estimator: Shao et al., "DeepSeekMath", arXiv 2402.03300
  (k1/k2/k3 follow J. Schulman, "Approximating KL Divergence", 2020).
- Aggregation modes as in verl's ``agg_loss``; ``seq-mean-token-sum-norm`` is Dr. GRPO:
  Liu et al., "Understanding R1-Zero-Like Training", arXiv 2503.20783.

Shapes follow verl's convention: ``B`` sequences (batch), ``T`` response tokens, ``V`` vocabulary.
A ``mask`` is 1 (or True) on valid response tokens and 0 on padding; values at masked
positions never reach a result, even when they are inf or NaN.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

KL_KINDS = ("k1", "k2", "k3")
AGGREGATION_MODES = (
    "token-mean",
    "seq-mean-token-mean",
    "seq-mean-token-sum",
    "seq-mean-token-sum-norm",
)


def kl_penalty(logp: Tensor, ref_logp: Tensor, kind: str) -> Tensor:
    """Per-token estimate of KL(pi_theta || pi_ref) from samples of pi_theta.

    With ``d = logp - ref_logp``: ``k1 = d``, ``k2 = d^2 / 2``, ``k3 = exp(-d) + d - 1``
    (non-negative, low variance; GRPO's in-loss KL).

    Args:
        logp: ``[B, T]`` log-probs of the sampled tokens under the policy.
        ref_logp: ``[B, T]`` log-probs of the same tokens under the reference policy.
        kind: ``"k1"``, ``"k2"`` or ``"k3"``.

    Returns:
        ``[B, T]`` per-token KL estimate (not masked).
    """
    d = logp - ref_logp
    if kind == "k1":
        return d
    if kind == "k2":
        return 0.5 * d * d
    if kind == "k3":
        # expm1 keeps precision when d is near 0, where the estimator is ~d^2/2.
        return torch.expm1(-d) + d
    raise ValueError(f"unknown KL kind {kind!r}; valid kinds: {', '.join(KL_KINDS)}")


def _denominator(value: float | int | Tensor | None, default: float | int | Tensor,
                 like: Tensor) -> Tensor:
    """A denominator (the global one if given, else the local default) as a tensor of
    ``like``'s dtype and device, at least 1 so that an empty batch gives 0, not NaN."""
    if value is None:
        value = default
    return torch.as_tensor(value, dtype=like.dtype, device=like.device).clamp_min(1.0)


def aggregate(
    values: Tensor,
    mask: Tensor,
    mode: str,
    num_tokens: float | int | Tensor | None = None,
    num_seqs: float | int | Tensor | None = None,
    max_len: float | int | Tensor | None = None,
) -> Tensor:
    """Reduce a per-token loss to a scalar.

    Modes (``n_b`` = valid tokens of row ``b``):
    - ``token-mean``: ``sum_{b,t} x / sum_b n_b``.
    - ``seq-mean-token-mean``: ``mean_b (sum_t x_b / n_b)`` (original GRPO); a row with no
      valid token counts as a sequence with mean 0.
    - ``seq-mean-token-sum``: ``mean_b sum_t x_b``.
    - ``seq-mean-token-sum-norm``: ``mean_b (sum_t x_b / T_max)`` (Dr. GRPO), ``T_max`` the
      padded response length ``T`` unless ``max_len`` is given.

    Gradient accumulation: when a batch is split into micro-batches, pass the *whole* batch's
    ``num_tokens`` (token-mean), ``num_seqs`` (the seq-mean modes) and ``max_len`` (the -norm
    mode) to every micro-batch call; the micro-batch losses then sum exactly to the full-batch
    loss. Denominators that the mode does not use are ignored, so a caller may always pass all
    three (e.g. after an all-reduce across ranks).

    Args:
        values: ``[B, T]`` per-token values.
        mask: ``[B, T]`` 1/True on valid tokens.
        mode: one of ``AGGREGATION_MODES``.
        num_tokens: global number of valid tokens (default: ``mask.sum()``).
        num_seqs: global number of sequences (default: ``B``).
        max_len: global ``T_max`` (default: ``T``).

    Returns:
        0-dim tensor of ``values.dtype``. An all-masked batch gives 0, never NaN.
    """
    valid = mask.bool()
    masked = values.masked_fill(~valid, 0.0)
    if mode == "token-mean":
        return masked.sum() / _denominator(num_tokens, valid.sum(), values)
    seqs = _denominator(num_seqs, values.shape[0], values)
    if mode == "seq-mean-token-mean":
        row_tokens = valid.sum(-1).to(values.dtype).clamp_min(1.0)
        return (masked.sum(-1) / row_tokens).sum() / seqs
    if mode == "seq-mean-token-sum":
        return masked.sum() / seqs
    if mode == "seq-mean-token-sum-norm":
        t_max = _denominator(max_len, values.shape[-1], values)
        return masked.sum() / t_max / seqs
    raise ValueError(
        f"unknown aggregation mode {mode!r}; valid modes: {', '.join(AGGREGATION_MODES)}"
    )


def _log_ratio(logp: Tensor, old_logp: Tensor, mask: Tensor) -> Tensor:
    # Zero at padding *before* exp, so garbage there cannot overflow into inf * 0 = NaN,
    # neither in the forward pass nor in the gradient.
    return (logp - old_logp).masked_fill(~mask.bool(), 0.0)


def clipped_surrogate(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    clip_eps: float = 0.2,
    mode: str = "token-mean",
    *,
    num_tokens: float | int | Tensor | None = None,
    num_seqs: float | int | Tensor | None = None,
    max_len: float | int | Tensor | None = None,
) -> Tensor:
    """PPO clipped policy loss, aggregated with :func:`aggregate`.

    Per token, with ``rho = exp(logp - old_logp)``:
    ``max(-A * rho, -A * clip(rho, 1 - clip_eps, 1 + clip_eps))``.

    Args:
        logp: ``[B, T]`` log-probs under the current policy (with gradient).
        old_logp: ``[B, T]`` log-probs under the policy that sampled the batch.
        advantages: ``[B, T]`` (broadcast a per-sequence advantage with ``A[:, None]``).
        mask: ``[B, T]``.
        clip_eps: clip range epsilon.
        mode, num_tokens, num_seqs, max_len: see :func:`aggregate`.

    Returns:
        0-dim loss tensor.
    """
    ratio = torch.exp(_log_ratio(logp, old_logp, mask))
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps)
    per_token = torch.maximum(unclipped, clipped)
    return aggregate(per_token, mask, mode, num_tokens=num_tokens, num_seqs=num_seqs,
                     max_len=max_len)


def policy_loss(logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor, clip_eps: float = 0.2,
                mode: str = "token-mean", kl_coef: float = 0.0, ref_logp: Tensor | None = None,
                kl_kind: str = "k3", **denominators) -> tuple[Tensor, dict]:
    """The policy loss every clipped-surrogate algorithm shares (GRPO, PPO, BASIS, RLOO, REINFORCE++):
    ``clipped_surrogate + kl_coef * aggregate(kl_penalty(logp, ref_logp, kl_kind))``.

    Args:
        logp, old_logp, advantages, mask: ``[B, T]``, as :func:`clipped_surrogate`.
        clip_eps, mode: as :func:`clipped_surrogate`.
        denominators: ``num_tokens``, ``num_seqs``, ``max_len``, as :func:`aggregate`.
        kl_coef: weight of the in-loss KL to the reference (0: no KL term, ``ref_logp`` unused).
        ref_logp: ``[B, T]`` reference log-probs, needed when ``kl_coef > 0``.
        kl_kind: ``"k1"`` | ``"k2"`` | ``"k3"``.

    Returns:
        ``(loss, stats)``: a 0-dim tensor and ``{"policy_loss": float[, "kl_ref": float]}``.
    """
    loss = clipped_surrogate(logp, old_logp, advantages, mask, clip_eps, mode, **denominators)
    stats = {"policy_loss": float(loss.detach())}
    if kl_coef > 0:
        if ref_logp is None:
            raise ValueError("policy_loss: kl_coef > 0 needs ref_logp")
        kl = aggregate(kl_penalty(logp, ref_logp, kl_kind), mask, mode, **denominators)
        stats["kl_ref"] = float(kl.detach())
        loss = loss + kl_coef * kl
    return loss, stats


def clip_fraction(logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor,
                  clip_eps: float = 0.2) -> Tensor:
    """Fraction of valid tokens whose surrogate is clipped (zero gradient); a diagnostic.

    Shapes as in :func:`clipped_surrogate`; returns a 0-dim tensor of ``logp.dtype``.
    """
    ratio = torch.exp(_log_ratio(logp, old_logp, mask)).detach()
    clipped = ((advantages > 0) & (ratio > 1.0 + clip_eps)) | (
        (advantages < 0) & (ratio < 1.0 - clip_eps)
    )
    return masked_mean(clipped.to(logp.dtype), mask)


def sequence_logp(token_logp: Tensor, mask: Tensor) -> Tensor:
    """Sequence log-probability, the masked sum over tokens.

    Args:
        token_logp: ``[B, T]``.
        mask: ``[B, T]``.

    Returns:
        ``[B]``.
    """
    return token_logp.masked_fill(~mask.bool(), 0.0).sum(-1)


def token_logp(logits: Tensor, tokens: Tensor, temperature: float = 1.0) -> Tensor:
    """Log-probability of ``tokens`` under ``softmax(logits / temperature)``.

    Computed as ``logits[token] - logsumexp(logits)``, so no full ``[B, T, V]`` log-softmax is
    kept; with ``temperature != 1`` the scaled logits are the one extra ``[B, T, V]`` tensor.
    Half-precision logits (bf16/fp16) are processed one row at a time in float32, which bounds
    the extra memory to one ``[T, V]`` float32 tensor and returns float32.

    Args:
        logits: ``[B, T, V]``; position ``t`` predicts ``tokens[:, t]``.
        tokens: ``[B, T]`` integer token ids.
        temperature: sampling temperature the tokens were drawn at.

    Returns:
        ``[B, T]`` log-probs (dtype of ``logits``; float32 for half-precision logits).
    """
    if temperature != 1.0:
        logits = logits / temperature
    index = tokens.long().unsqueeze(-1)
    if logits.dtype in (torch.float32, torch.float64):
        picked = logits.gather(-1, index).squeeze(-1)
        return picked - torch.logsumexp(logits, dim=-1)
    rows = []
    for row_logits, row_index in zip(logits, index):
        row_logits = row_logits.float()
        picked = row_logits.gather(-1, row_index).squeeze(-1)
        rows.append(picked - torch.logsumexp(row_logits, dim=-1))
    return torch.stack(rows)


def masked_mean(values: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean over valid positions (all of them, or along ``dim``); 0 where nothing is valid.

    Args:
        values: ``[B, T]`` (any shape matching ``mask``).
        mask: same shape as ``values``.
        dim: reduce only this dimension.

    Returns:
        0-dim tensor, or ``values`` reduced along ``dim``.
    """
    valid = mask.bool()
    masked = values.masked_fill(~valid, 0.0)
    if dim is None:
        return masked.sum() / valid.sum().to(values.dtype).clamp_min(1.0)
    return masked.sum(dim) / valid.sum(dim).to(values.dtype).clamp_min(1.0)


def masked_whiten(values: Tensor, mask: Tensor, shift_mean: bool = True,
                  eps: float = 1e-8) -> Tensor:
    """Normalise ``values`` with the mean and variance of its valid positions (as verl).

    The variance is unbiased (Bessel-corrected, divided by ``n - 1``) like verl's
    ``masked_whiten``; with fewer than two valid positions the biased variance is used. With
    ``shift_mean=False`` the mean is added back (only the scale changes). Masked positions are
    set to 0.

    Args:
        values: ``[B, T]``.
        mask: ``[B, T]``.
        shift_mean: subtract the mean.
        eps: added to the variance before the square root.

    Returns:
        ``[B, T]``.
    """
    valid = mask.bool()
    count = valid.sum().to(values.dtype)
    mean = masked_mean(values, valid)
    centred = (values - mean).masked_fill(~valid, 0.0)
    variance = (centred * centred).sum() / (count - 1.0).clamp_min(1.0)
    whitened = centred * torch.rsqrt(variance + eps)
    if not shift_mean:
        whitened = whitened + mean
    return whitened.masked_fill(~valid, 0.0)


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Entropy of ``softmax(logits)`` at each position.

    Args:
        logits: ``[B, T, V]``.

    Returns:
        ``[B, T]``: ``logsumexp(z) - sum softmax(z) * z``.
    """
    probs = torch.softmax(logits, dim=-1)
    return torch.logsumexp(logits, dim=-1) - (probs * logits).sum(-1)


def squared_error_mean(residual: Tensor, count: float | int | Tensor | None = None) -> Tensor:
    """``sum(residual^2) / count`` (default ``count`` = rows): the regression losses of REBEL and
    A*-PO, with a global ``count`` so micro-batches accumulate to the full batch's loss."""
    count = residual.shape[0] if count is None else count
    count = torch.as_tensor(count, dtype=residual.dtype, device=residual.device).clamp_min(1.0)
    return (residual * residual).sum() / count


def _head_logp_entropy(hidden: Tensor, head: Callable[[Tensor], Tensor], tokens: Tensor,
                       temperature: float, entropy_grad: bool) -> tuple[Tensor, Tensor]:
    # One chunk: [n, H] -> logits [n, V] (in float32 at least) -> log-prob of `tokens` and entropy.
    logits = head(hidden)
    if logits.dtype not in (torch.float32, torch.float64):
        logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    lse = torch.logsumexp(logits, dim=-1)
    logp = logits.gather(-1, tokens.long().unsqueeze(-1)).squeeze(-1) - lse
    with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
        entropy = lse - (torch.softmax(logits, dim=-1) * logits).sum(-1)
    return logp, entropy


def chunked_logp_entropy(hidden: Tensor, head: Callable[[Tensor], Tensor], tokens: Tensor,
                         temperature: float = 1.0, chunk_size: int = 1024,
                         entropy_grad: bool = False) -> tuple[Tensor, Tensor]:
    """Per-token log-probs and entropies from hidden states, the output layer applied a chunk of
    positions at a time (NeMo-RL's ``logprob_chunk_size``; verl's fused kernels do the same).

    Full-vocabulary logits exist for at most ``chunk_size`` positions at once, in the forward pass
    and in the backward pass (each chunk is recomputed there from its hidden states), instead of
    ``[B, T, V]`` logits, their log-softmax and its gradient. Equal to
    ``token_logp(head(hidden), tokens)`` and ``entropy_from_logits`` up to float rounding.

    Args:
        hidden: ``[B, T, H]`` final hidden states; position ``t`` predicts ``tokens[:, t]``.
        head: the output layer, ``[n, H] -> [n, V]`` (a model's ``lm_head``).
        tokens: ``[B, T]`` integer token ids.
        temperature: sampling temperature the tokens were drawn at.
        chunk_size: positions per chunk (> 0).
        entropy_grad: whether the entropy carries a gradient (an entropy bonus); else detached.

    Returns:
        ``([B, T], [B, T])`` log-probs and entropies, float32 for half-precision hidden states.
    """
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    b, t = tokens.shape
    flat_hidden, flat_tokens = hidden.reshape(b * t, -1), tokens.reshape(b * t)
    logps, entropies = [], []
    for start in range(0, b * t, chunk_size):
        h, tok = flat_hidden[start:start + chunk_size], flat_tokens[start:start + chunk_size]
        if torch.is_grad_enabled() and (h.requires_grad or any(p.requires_grad for p in _parameters(head))):
            # Keep only the chunk's hidden states for backward; its logits are computed again there.
            logp, entropy = checkpoint(_head_logp_entropy, h, head, tok, temperature, entropy_grad,
                                       use_reentrant=False)
        else:
            logp, entropy = _head_logp_entropy(h, head, tok, temperature, entropy_grad)
        logps.append(logp)
        entropies.append(entropy if entropy_grad else entropy.detach())
    if not logps:
        empty = flat_hidden.new_zeros((b, t), dtype=torch.promote_types(flat_hidden.dtype, torch.float32))
        return empty, empty
    return torch.cat(logps).view(b, t), torch.cat(entropies).view(b, t)


def _parameters(head) -> list[Tensor]:
    return list(head.parameters()) if isinstance(head, torch.nn.Module) else []
