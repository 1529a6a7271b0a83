"""The common LightningModule: rollout -> reward -> advantage -> loss -> update.

The loop lives here once. An algorithm declares what it needs (`samples_per_prompt`,
`needs_critic`, `needs_offline_values`, `needs_old_logp`, `needs_ref_logp`) and implements
`advantages` and `loss`; everything else (padding, log-probs, micro-batching with exact
gradient accumulation, timing, token counts for the budget) is shared.
"""

from __future__ import annotations

import copy
import math
import time
from contextlib import contextmanager
from typing import Callable

import lightning as L
import torch

import algorithms.losses as losses
from algorithms.batch import RLBatch, build_batch
from algorithms.config import AlgorithmConfig
from algorithms.distributed import DistributedBatch
from algorithms.passes import BatchPasses
from algorithms.rollout import Rollout, RolloutEngine, SamplingParams

# Metrics that are additive parts of the global batch's value (global denominators): summed over processes.
ADDITIVE_STATS = ("train/loss", "train/policy_loss", "train/value_loss", "train/kl_ref", "train/entropy")
RewardFn = Callable[[list[str], list], list[float]]
EncodeFn = Callable[[list], list[list[int]]]


class RLModule(BatchPasses, DistributedBatch, L.LightningModule):
    """Subclasses set `name`, `config_class`, the `needs_*` declarations, `advantages` and `loss`."""

    name: str | None = None
    """The registered name (`algorithms.get(name)`); a class without one is not registered."""
    config_class = AlgorithmConfig
    needs_critic = False
    additive_stats = ADDITIVE_STATS
    """`train/` metrics computed with the global batch's denominators: summed over DDP processes
    (the others are averaged)."""

    def __init__(self, policy: torch.nn.Module, tokenizer, engine: RolloutEngine, reward_fn: RewardFn,
                 encode_fn: EncodeFn, config: AlgorithmConfig, seed: int = 0):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} takes a {self.config_class.__name__}, got {type(config).__name__}")
        self.automatic_optimization = False
        self.policy = policy.train()
        self.tokenizer = tokenizer
        self.engine = engine
        self.reward_fn = reward_fn
        self.encode_fn = encode_fn
        self.config = config
        self.seed = seed
        # The frozen reference is kept outside the module's parameters and state dict (never trained,
        # never checkpointed twice) but follows every move and cast of the module (`_apply`).
        self._reference = [self._frozen_copy(policy)] if self.needs_ref_logp else []
        if config.gradient_checkpointing:  # after the copy: the frozen reference keeps its cache
            enable_gradient_checkpointing(self.policy)
        self.timings: dict[str, float] = {}
        self.step_metrics: dict[str, float] = {}
        self.counters = {"samples": 0, "prompt_tokens": 0, "generated_tokens": 0,
                         "forward_tokens": 0, "train_tokens": 0}
        self.rl_step = 0
        self.processes = 1  # the process group's size as the last training step saw it
        # Updates skipped because a loss was NaN/inf: total optimizer steps skipped, and how many
        # RL steps in a row had one (the harness stops the run after too many in a row).
        self.nonfinite_skipped = 0
        self.nonfinite_streak = 0
        self.step_lr = self.config.lr

    # --- declarations -------------------------------------------------------------------
    @property
    def samples_per_prompt(self) -> int:
        return self.config.samples_per_prompt

    @property
    def needs_ref_logp(self) -> bool:
        return self.config.kl_coef > 0

    @property
    def needs_offline_values(self) -> bool:
        return self.offline_samples_per_prompt() > 0

    @property
    def entropy_grad(self) -> bool:
        """Whether `loss` differentiates the entropy (an entropy bonus)."""
        return False

    @property
    def needs_old_logp(self) -> bool:
        # With one pass and one optimizer step the batch is on-policy: old = current, detached.
        return self.config.epochs > 1 or self.config.mini_batches > 1

    # --- what a subclass implements -----------------------------------------------------
    def advantages(self, batch: RLBatch) -> torch.Tensor:
        """[N, T] advantages (zero where response_mask == 0)."""
        raise NotImplementedError

    def loss(self, batch: RLBatch, logp: torch.Tensor, entropy: torch.Tensor,
             denominators: dict) -> tuple[torch.Tensor, dict]:
        """Scalar loss of a micro-batch from its current per-token log-probs and entropies [n, T]
        (the entropy carries a gradient only where `entropy_grad` says so).

        `denominators` are the mini-batch's (num_tokens, num_seqs, max_len): pass them to
        `losses.aggregate` so that accumulating micro-batches gives the mini-batch's gradient.
        """
        raise NotImplementedError

    def prepare(self, batch: RLBatch, examples: list) -> None:
        """Hook run after reward and log-prob passes, before advantages (e.g. critic values)."""

    def offline_samples_per_prompt(self) -> int:
        """Reference samples per training prompt the offline stage needs (0: no offline stage)."""
        return 0

    def set_offline(self, stats: dict) -> None:
        """Receive the offline stage's results: example id -> list of rewards of reference samples."""

    def keep_example(self, example, stats: dict) -> bool:
        """Whether a training prompt stays after the offline stage (A*-PO may drop unsolved ones)."""
        return True

    def training_state(self) -> dict:
        """What a resumed run needs besides weights and optimizer states: plain Python values only
        (checkpoints are loaded with `weights_only=True`). Subclasses extend it."""
        return {"rl_step": self.rl_step, "counters": dict(self.counters),
                "nonfinite_skipped": self.nonfinite_skipped, "nonfinite_streak": self.nonfinite_streak}

    def load_training_state(self, state: dict) -> None:
        self.rl_step = int(state["rl_step"])
        self.counters = dict(state["counters"])
        self.nonfinite_skipped = int(state["nonfinite_skipped"])
        self.nonfinite_streak = int(state["nonfinite_streak"])

    # --- shared machinery ---------------------------------------------------------------
    @staticmethod
    def _frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
        frozen = copy.deepcopy(model).eval()
        for p in frozen.parameters():
            p.requires_grad_(False)
        return frozen

    @property
    def reference(self) -> torch.nn.Module:
        return self._reference[0]

    def _apply(self, fn, *args, **kwargs):
        # `.to(device)`, `.to(dtype)`, `.cuda()`, Lightning's precision casts: the reference goes along.
        for frozen in self._reference:
            frozen._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def on_fit_start(self) -> None:
        # Under bf16 precisions the frozen reference is held in bf16, as verl does (its log-probs are
        # computed in float32 all the same: `response_logits`).
        if self._reference and str(self.trainer.precision).startswith("bf16"):
            self.reference.to(torch.bfloat16)

    @contextmanager
    def phase(self, name: str):
        # CUDA runs asynchronously: without a synchronize a phase's kernels would be timed in the next.
        synchronize = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        synchronize()
        start = time.perf_counter()
        try:
            yield
        finally:
            synchronize()
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start

    def configure_optimizers(self):
        return torch.optim.AdamW(self.policy.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        return batch  # a list of task examples: nothing to move

    def sampling_params(self, n: int | None = None, rank: int | None = None) -> SamplingParams:
        c = self.config
        # The seed depends on (run seed, step, rank) only, so a resumed run samples what it would have;
        # each DDP process (`rank`, default its own) has its own stream, rank 0's the one-process run's.
        rank = self.global_rank if rank is None else rank
        seed = self.seed * 1_000_003 + self.rl_step + rank * 7_919_000_003
        return SamplingParams(n=n or self.samples_per_prompt, temperature=c.temperature, top_p=c.top_p,
                              max_new_tokens=c.max_new_tokens, seed=seed)

    def make_batch(self, examples: list) -> tuple[RLBatch, Rollout]:
        """Rollout, reward, the declared log-prob passes, `prepare` and advantages: all but the update."""
        # Sampling runs outside bf16-mixed's autocast (which wraps training_step): the engine samples
        # in its own dtype, as it does in the offline stage and evaluation, and vLLM's ops are its own.
        with self.phase("generate"), torch.autocast(self.device.type, enabled=False):
            prompt_ids = self.encode_fn(examples)
            rollout = self.engine.generate(prompt_ids, self.sampling_params())
        with self.phase("reward"):
            expanded = [ex for ex in examples for _ in range(self.samples_per_prompt)]
            rewards = self.reward_fn(rollout.texts, expanded)
        return self.batch_from_rollout(rollout, rewards, examples), rollout

    def batch_from_rollout(self, rollout: Rollout, rewards: list[float], examples: list) -> RLBatch:
        """The batch of a rollout and its rewards: counters, log-prob passes, `prepare`, advantages."""
        batch = build_batch(rollout, rewards, self.tokenizer.pad_token_id, self.samples_per_prompt, self.device)
        self.counters["samples"] += len(rollout)
        self.counters["prompt_tokens"] += rollout.prompt_tokens
        self.counters["generated_tokens"] += rollout.generated_tokens
        if self.needs_ref_logp:
            with self.phase("reference"):
                batch.ref_logp = self.no_grad_logp(self.reference, batch)
        if self.needs_old_logp:
            with self.phase("old_logp"):
                batch.old_logp = self.no_grad_logp(self.policy, batch)
        self.prepare(batch, examples)
        batch.advantages = self.advantages(batch)
        if batch.advantages is None or batch.advantages.shape != batch.response_mask.shape:
            shape = None if batch.advantages is None else tuple(batch.advantages.shape)
            raise ValueError(f"{type(self).__name__}.advantages must return [N, T] = "
                             f"{tuple(batch.response_mask.shape)}, got {shape}")
        return batch

    def training_step(self, examples: list, batch_idx: int):
        self.timings = {}
        self.processes = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
        batch, rollout = self.make_batch(examples)
        with self.phase("update"):
            stats = self.update(batch)
        with self.phase("weight_sync"):
            self.engine.load_weights(self.policy)
        self.rl_step += 1
        self.step_metrics = self.collect_metrics(batch, rollout, stats)
        self.log("reward", self.step_metrics["train/reward_mean"], prog_bar=True, logger=False, batch_size=len(batch))

    def accumulate_gradients(self, mini: RLBatch) -> dict:
        """Backward of one mini-batch, micro-batch by micro-batch, with the mini-batch's denominators,
        so the accumulated gradient equals the gradient of the whole mini-batch's loss."""
        # Denominators of the global mini-batch (all processes), so that DDP's gradient average
        # of the processes' losses, each scaled by the number of processes, is the global gradient.
        sizes = self.all_reduce(torch.tensor([float(mini.response_mask.sum()), float(len(mini))], dtype=torch.float64,
                                             device=self.device))
        max_len = self.all_reduce(torch.tensor(float(mini.response_width), device=self.device), "max")
        denominators = {"num_tokens": max(float(sizes[0]), 1.0), "num_seqs": float(sizes[1]), "max_len": float(max_len)}
        scale = self.trainer.world_size if self.distributed else 1
        stats: dict[str, float] = {}
        for _, micro in self.micro_batches(mini):
            logp, entropy = self.logp_and_entropy(self.policy, micro, entropy_grad=self.entropy_grad)
            # 0 at padding, like the stored per-token passes: no exp() of a padding difference can overflow.
            logp = logp.masked_fill(micro.response_mask == 0, 0.0)
            if micro.old_logp is None:
                micro.old_logp = logp.detach()
            loss, micro_stats = self.loss(micro, logp, entropy, denominators)
            # All processes agree, so that they skip together (a backward in some only would hang DDP).
            if not self.all_reduce(torch.tensor(float(torch.isfinite(loss)), device=self.device), "min"):
                # No backward: the caller zeroes what earlier micro-batches accumulated and skips the step.
                return {"nonfinite": 1.0}
            if self._trainer is not None:
                self.manual_backward(loss * scale)
            else:  # outside a Trainer (unit tests of the loss path)
                loss.backward()
            self.counters["train_tokens"] += self.computed_tokens(micro)
            with torch.no_grad():
                micro_stats["entropy"] = float((entropy.detach() * micro.response_mask).sum() / denominators["num_tokens"])
            micro_stats["loss"] = float(loss.detach())
            for key, value in micro_stats.items():
                stats[key] = stats.get(key, 0.0) + float(value)
        return stats

    def lr_factor(self) -> float:
        """The learning rates' share of their configured values at this RL step (linear warm-up)."""
        warmup = self.config.lr_warmup_steps
        return min(1.0, (self.rl_step + 1) / warmup) if warmup > 0 else 1.0

    def update(self, batch: RLBatch) -> dict:
        """Epochs x mini-batches optimizer steps; each mini-batch accumulated over micro-batches."""
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        factor = self.lr_factor()
        self.step_lr = self.config.lr * factor
        for each in optimizers:  # a function of the RL step alone: nothing to save for a resume
            for group in each.param_groups:
                group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor
        optimizer = optimizers[0]
        generator = torch.Generator().manual_seed(self.seed * 7919 + self.rl_step)
        g = self.samples_per_prompt
        prompts = len(batch) // g
        sums: dict[str, float] = {}
        count = skipped = 0
        for _ in range(self.config.epochs):
            # Shuffle whole prompts (their groups or pairs stay together), then split.
            # Row indices stay on the CPU beside their generator (indexing a device tensor with them is fine).
            prompt_order = (torch.randperm(prompts, generator=generator, device="cpu") if self.config.mini_batches > 1
                            else torch.arange(prompts, device="cpu"))
            for mini_prompts in prompt_order.chunk(min(self.config.mini_batches, prompts)):
                mini_index = (mini_prompts[:, None] * g + torch.arange(g, device="cpu")).reshape(-1)
                mini_stats = self.accumulate_gradients(batch.select(mini_index))
                if mini_stats.get("nonfinite"):
                    self.zero_grad(set_to_none=True)  # every optimizer's parameters (PPO's critic too)
                    self.nonfinite_skipped += 1
                    skipped += 1
                    continue
                for key, value in mini_stats.items():
                    sums[key] = sums.get(key, 0.0) + value
                if self.config.max_grad_norm > 0:
                    self.clip_gradients(optimizer, gradient_clip_val=self.config.max_grad_norm, gradient_clip_algorithm="norm")
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                self.after_optimizer_step()
                count += 1
        self.nonfinite_streak = self.nonfinite_streak + 1 if skipped else 0
        # Micro-batch stats are additive parts of their mini-batch's value: average over mini-batches.
        return {key: value / count for key, value in sums.items()} if count else {}

    def after_optimizer_step(self) -> None:
        """Hook for a second optimizer step (PPO's critic)."""

    def collect_metrics(self, batch: RLBatch, rollout, stats: dict) -> dict:
        mask = batch.response_mask
        metrics = {f"train/{key}": value for key, value in stats.items()}
        metrics["train/reward_mean"] = float(batch.rewards.mean())
        metrics["train/lr"] = self.step_lr
        metrics["train/nonfinite_skipped"] = float(self.nonfinite_skipped)
        metrics["train/response_length"] = float(mask.sum(-1).mean())
        if batch.ref_logp is not None and "train/kl_ref" not in metrics:
            logp = batch.old_logp if batch.old_logp is not None else batch.sample_logp
            kl = losses.kl_penalty(logp, batch.ref_logp, "k3")
            tokens = self.all_reduce(mask.sum().to(kl.dtype))  # the global batch's: a DDP-additive part
            metrics["train/kl_ref"] = float((kl * mask).sum() / tokens.clamp(min=1))
        for name, seconds in self.timings.items():
            metrics[f"timing_s/{name}"] = seconds
        step_seconds = sum(self.timings.values())
        metrics["perf/tokens_per_s"] = rollout.generated_tokens / max(self.timings.get("generate", 0.0), 1e-9)
        metrics["timing_s/step"] = step_seconds
        if self.distributed:  # global values of the train/ metrics; timings stay per process
            keys = sorted(k for k in metrics if k.startswith("train/") and k != "train/nonfinite_skipped")
            totals = self.all_reduce(torch.tensor([metrics[k] for k in keys], dtype=torch.float64, device=self.device)).tolist()
            world = self.trainer.world_size
            metrics.update({k: v if k in self.additive_stats else v / world for k, v in zip(keys, totals)})
        for key, value in metrics.items():
            if isinstance(value, float) and not math.isfinite(value):
                metrics[key] = float("nan")
        return metrics


def enable_gradient_checkpointing(model: torch.nn.Module) -> None:
    """The model's own layer checkpointing (Hugging Face's `gradient_checkpointing_enable`),
    non-reentrant so that inputs without a gradient and manual backward both work."""
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise ValueError(f"gradient_checkpointing: {type(model).__name__} does not support gradient checkpointing")
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
