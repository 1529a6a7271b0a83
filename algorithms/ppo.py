"""PPO with a learned critic and GAE, as in verl and TRL.

- Schulman et al., "Proximal Policy Optimization Algorithms", arXiv 1707.06347.
- Schulman et al., "High-Dimensional Continuous Control Using Generalized Advantage
  Estimation", arXiv 1506.02438.
- Token-level KL-shaped rewards and the clipped value loss follow Ouyang et al. (InstructGPT),
  arXiv 2203.02155, and verl's ``compute_gae_advantage_return`` / ``compute_value_loss``.

The policy loss is :func:`algorithms.losses.clipped_surrogate` on advantages whitened with
:func:`algorithms.losses.masked_whiten`; :func:`gae` itself returns raw advantages.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor

import algorithms.losses as losses
from algorithms.base import RLModule
from algorithms.config import AlgorithmConfig
from algorithms.losses import aggregate, kl_penalty


def token_rewards(score: Tensor, old_logp: Tensor, ref_logp: Tensor, mask: Tensor,
                  beta_kl: float) -> Tensor:
    """Per-token rewards: ``-beta_kl * k1(old, ref)`` at every valid token, plus the verified
    score at the last valid token of each row.

    Args:
        score: ``[B]`` sequence-level verified reward.
        old_logp: ``[B, T]`` log-probs of the sampling policy.
        ref_logp: ``[B, T]`` log-probs of the reference policy.
        mask: ``[B, T]``.
        beta_kl: in-reward KL coefficient.

    Returns:
        ``[B, T]``, 0 at masked positions; a row without valid tokens is all 0.
    """
    valid = mask.bool()
    rewards = (-beta_kl * kl_penalty(old_logp, ref_logp, "k1")).masked_fill(~valid, 0.0)
    positions = torch.arange(valid.shape[-1], device=valid.device)
    last = (positions * valid).argmax(dim=-1)  # index of the last valid token
    has_token = valid.any(dim=-1)
    bonus = torch.where(has_token, score.to(rewards.dtype), torch.zeros_like(rewards[:, 0]))
    return rewards.scatter_add(-1, last.unsqueeze(-1), bonus.unsqueeze(-1))


def gae(rewards: Tensor, values: Tensor, mask: Tensor, gamma: float = 1.0,
        lam: float = 1.0) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over response tokens.

    ``delta_t = r_t + gamma * V_{t+1} - V_t`` with ``V = 0`` past the last valid token,
    ``A_t = delta_t + gamma * lam * A_{t+1}``, returns ``R_t = A_t + V_t``.

    Masks are expected to be right-padded (each row's valid tokens a prefix). A masked position
    inside a row is skipped as in verl: its reward and value are ignored and the recursion
    carries ``V_{t+1}`` and ``A_{t+1}`` across it, as if the row had been compacted.

    Args:
        rewards: ``[B, T]`` token rewards (see :func:`token_rewards`).
        values: ``[B, T]`` critic values of the sampling-time critic.
        mask: ``[B, T]``.
        gamma: discount.
        lam: GAE lambda.

    Returns:
        ``(advantages, returns)``, each ``[B, T]``, 0 where ``mask == 0``; not whitened.
    """
    valid = mask.bool()
    next_value = torch.zeros_like(values[:, 0])
    next_advantage = torch.zeros_like(values[:, 0])
    reversed_advantages = []
    for t in reversed(range(values.shape[-1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantage = delta + gamma * lam * next_advantage
        next_value = torch.where(valid[:, t], values[:, t], next_value)
        next_advantage = torch.where(valid[:, t], advantage, next_advantage)
        reversed_advantages.append(advantage)
    advantages = torch.stack(reversed_advantages[::-1], dim=-1).masked_fill(~valid, 0.0)
    returns = (advantages + values).masked_fill(~valid, 0.0)
    return advantages, returns


def value_loss(
    values: Tensor,
    old_values: Tensor,
    returns: Tensor,
    mask: Tensor,
    clip_range: float = 0.5,
    mode: str = "token-mean",
    *,
    num_tokens: float | int | Tensor | None = None,
    num_seqs: float | int | Tensor | None = None,
    max_len: float | int | Tensor | None = None,
) -> Tensor:
    """Clipped critic loss ``0.5 * agg(max((V - R)^2, (clip(V, V_old - c, V_old + c) - R)^2))``.

    Args:
        values: ``[B, T]`` current critic values (with gradient).
        old_values: ``[B, T]`` critic values at sampling time.
        returns: ``[B, T]`` GAE returns.
        mask: ``[B, T]``.
        clip_range: c.
        mode, num_tokens, num_seqs, max_len: see :func:`algorithms.losses.aggregate`.

    Returns:
        0-dim loss tensor.
    """
    clipped = old_values + (values - old_values).clamp(-clip_range, clip_range)
    per_token = torch.maximum((values - returns) ** 2, (clipped - returns) ** 2)
    return 0.5 * aggregate(per_token, mask, mode, num_tokens=num_tokens, num_seqs=num_seqs,
                           max_len=max_len)


# --- the LightningModule ------------------------------------------------------------------



@dataclass
class PPOConfig(AlgorithmConfig):
    kl_coef: float = 1e-3
    """beta_kl of the in-reward k1 penalty."""
    gamma: float = 1.0
    lam: float = 1.0
    critic_lr: float | None = None
    """Default: 10 x lr."""
    value_clip: float = 0.5
    whiten_advantages: bool = True


class ValueModel(torch.nn.Module):
    """The policy's transformer body (copied) with a scalar head: V(s_t) at every position."""

    def __init__(self, policy: torch.nn.Module):
        super().__init__()
        self.body = copy.deepcopy(policy.base_model)
        self.head = torch.nn.Linear(policy.config.hidden_size, 1)
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)

    def forward(self, batch) -> Tensor:
        """[n, T] values of the states before each response token."""
        hidden = self.body(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                           position_ids=batch.position_ids, use_cache=False).last_hidden_state
        # The state before response token t is the prefix ending at column P + t - 1.
        states = hidden[:, batch.prompt_width - 1: batch.prompt_width - 1 + batch.response_width]
        return self.head(states).squeeze(-1)


class PPO(RLModule):
    name = "ppo"
    config_class = PPOConfig
    needs_critic = True
    additive_stats = RLModule.additive_stats + ("train/value_mse",)

    def __init__(self, policy, *args, **kwargs):
        super().__init__(policy, *args, **kwargs)
        self.critic = ValueModel(policy)
        self.critic_parameters = sum(p.numel() for p in self.critic.parameters())

    @property
    def needs_ref_logp(self) -> bool:
        return self.config.kl_coef > 0

    @property
    def needs_old_logp(self) -> bool:
        # On-policy (one epoch, one mini-batch) no old-policy pass runs: the ratio takes old =
        # current, detached, and the in-reward KL takes the log-probs the sampler drew from, which
        # are pi_old's own (temperature applied on both sides) unless top-p truncated them.
        return super().needs_old_logp or self.config.top_p < 1.0

    def configure_optimizers(self):
        c = self.config
        policy = torch.optim.AdamW(self.policy.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        critic = torch.optim.AdamW(self.critic.parameters(), lr=c.critic_lr or 10 * c.lr)
        return [policy, critic]

    def prepare(self, batch, examples):
        with self.phase("critic"), torch.no_grad():
            batch.values = self.per_token(batch, self.critic)
        self.counters["critic_forward_tokens"] = self.counters.get("critic_forward_tokens", 0) + batch.num_tokens

    def advantages(self, batch):
        c = self.config
        mask = batch.response_mask
        old = batch.old_logp if batch.old_logp is not None else batch.sample_logp
        ref = batch.ref_logp if batch.ref_logp is not None else old
        rewards = token_rewards(batch.rewards, old, ref, mask, c.kl_coef)
        advantages, batch.returns = gae(rewards, batch.values, mask, c.gamma, c.lam)
        if c.whiten_advantages:
            advantages = self.masked_whiten(advantages, mask)  # over the global batch under DDP
        return advantages * mask

    def loss(self, batch, logp, entropy, denominators):
        c = self.config
        mask = batch.response_mask
        # The KL is in the reward (token_rewards), not the loss.
        policy_loss, _ = losses.policy_loss(logp, batch.old_logp, batch.advantages, mask, c.clip_eps, c.loss_agg,
                                            **denominators)
        values = self.critic(batch)
        critic_loss = value_loss(values, batch.values, batch.returns, mask, c.value_clip, c.loss_agg, **denominators)
        self.counters["critic_train_tokens"] = self.counters.get("critic_train_tokens", 0) + batch.num_tokens
        with torch.no_grad():
            value_mse = float(((values - batch.returns) ** 2 * mask).sum() / denominators["num_tokens"])
        # One backward serves both: the two losses touch disjoint parameters.
        return policy_loss + critic_loss, {"policy_loss": float(policy_loss.detach()),
                                           "value_loss": float(critic_loss.detach()), "value_mse": value_mse}

    def after_optimizer_step(self):
        critic_optimizer = self.optimizers()[1]
        if self.config.max_grad_norm > 0:
            self.clip_gradients(critic_optimizer, gradient_clip_val=self.config.max_grad_norm,
                                gradient_clip_algorithm="norm")
        critic_optimizer.step()
        critic_optimizer.zero_grad(set_to_none=True)
