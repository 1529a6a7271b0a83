"""The hyperparameters every algorithm shares: `AlgorithmConfig`, which each algorithm's config extends.

A dataclass per algorithm (fields and defaults; a preset's `algorithm:` section fills it through
`from_dict`); `__post_init__` rejects a setting that cannot work, naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

LOSS_AGG_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")
KL_KINDS = ("k1", "k2", "k3")


@dataclass
class AlgorithmConfig:
    """Hyperparameters every algorithm shares; subclasses add their own fields."""

    lr: float = 1e-4
    """AdamW learning rate of the policy."""
    weight_decay: float = 0.0
    lr_warmup_steps: int = 0
    """RL steps over which every learning rate (PPO's critic's too) rises linearly to its value, as
    verl's and TRL's warm-up do: Adam's first steps move every weight by about the learning rate."""
    max_grad_norm: float = 1.0
    """Gradient-norm clip per optimizer step (0 disables)."""
    samples_per_prompt: int = 1
    """Rollouts per prompt per step (GRPO's group size G; REBEL needs 2)."""
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 48
    epochs: int = 1
    """Passes over each rollout batch."""
    mini_batches: int = 1
    """Optimizer steps per epoch (the batch is split in this many mini-batches)."""
    micro_batch_size: int = 64
    """Samples per forward/backward; gradients are accumulated exactly across micro-batches."""
    micro_batch_tokens: int = 0
    """When > 0, micro-batches are sized by tokens instead (verl's dynamic batch size): as many
    whole groups as fit in this many padded token positions, a shared prompt counted once."""
    clip_eps: float = 0.2
    kl_coef: float = 0.0
    kl_kind: str = "k3"
    loss_agg: str = "token-mean"
    shared_prompts: bool = True
    """Compute each prompt once per group of samples in log-prob and training passes (the same
    numbers up to float rounding); False runs every row's prompt, for ablations."""
    logprob_chunk_size: int = 0
    """When > 0, log-probs and entropies take the output layer this many response positions at a
    time, recomputed in backward (NeMo-RL's `logprob_chunk_size`): no [n, T, vocab] float32 logits
    for a whole micro-batch. 0: the whole micro-batch at once."""
    gradient_checkpointing: bool = False
    """Recompute the policy's layer activations in backward (the model's own
    `gradient_checkpointing_enable`): less memory, ~30 % more compute; prompts are then not shared."""

    def __post_init__(self) -> None:
        for name in ("lr", "temperature", "top_p"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("samples_per_prompt", "max_new_tokens", "epochs", "mini_batches", "micro_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.kl_kind not in KL_KINDS:
            raise ValueError(f"kl_kind must be one of {KL_KINDS}, got {self.kl_kind!r}")
        if self.loss_agg not in LOSS_AGG_MODES:
            raise ValueError(f"loss_agg must be one of {LOSS_AGG_MODES}, got {self.loss_agg!r}")
        if self.kl_coef < 0 or self.clip_eps < 0:
            raise ValueError("kl_coef and clip_eps must be >= 0")
        if not isinstance(self.micro_batch_tokens, int) or self.micro_batch_tokens < 0:
            raise ValueError(f"micro_batch_tokens must be an integer >= 0, got {self.micro_batch_tokens!r}")
        if not isinstance(self.logprob_chunk_size, int) or self.logprob_chunk_size < 0:
            raise ValueError(f"logprob_chunk_size must be an integer >= 0, got {self.logprob_chunk_size!r}")
        if not isinstance(self.lr_warmup_steps, int) or self.lr_warmup_steps < 0:
            raise ValueError(f"lr_warmup_steps must be an integer >= 0, got {self.lr_warmup_steps!r}")

    @classmethod
    def from_dict(cls, values: dict, where: str = "algorithm config") -> "AlgorithmConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown} for {cls.__name__}; known: {sorted(known)}")
        return cls(**values)
