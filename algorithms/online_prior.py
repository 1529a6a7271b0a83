"""An online prior that follows the policy: per-prompt discounted Beta posteriors (SPO-style).

After SPO (arXiv 2509.13232); our choice of how it meets BASIS, not the paper's: the posterior
starts from the offline prior p0 and replaces it in whichever estimator BASIS uses
(``prior_source: online``). Registered for the value diagnostic in :mod:`algorithms.estimators`.
"""

from __future__ import annotations

import torch
from torch import Tensor


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
        counts = torch.tensor([self.counts[i] for i in ids], dtype=torch.float64, device="cpu")  # host-side state
        return (counts[:, 0] / counts.sum(-1)).to(dtype=dtype, device=device)

    def update(self, ids: list[str], rewards: Tensor) -> None:
        """Add one reward per prompt (a prompt listed twice gets both, in order): one batched
        :func:`beta_posterior_update` per round, the k-th round taking every prompt's k-th reward."""
        values = rewards.detach().to("cpu", torch.float64)
        seen: dict[str, int] = {}
        rounds: list[list[int]] = []  # positions in `ids`, by how often their prompt came before
        for position, key in enumerate(ids):
            k = seen.get(key, 0)
            seen[key] = k + 1
            if k == len(rounds):
                rounds.append([])
            rounds[k].append(position)
        for positions in rounds:
            keys = [ids[p] for p in positions]
            counts = torch.tensor([self.counts[key] for key in keys], dtype=torch.float64, device="cpu")
            alpha, beta = beta_posterior_update(counts[:, 0], counts[:, 1], values[positions], self.discount)
            self.counts.update(zip(keys, zip(alpha.tolist(), beta.tolist())))

    def state_dict(self) -> dict:
        return {"discount": self.discount, "counts": {k: list(v) for k, v in self.counts.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.discount = float(state["discount"])
        self.counts = {k: (float(v[0]), float(v[1])) for k, v in state["counts"].items()}

