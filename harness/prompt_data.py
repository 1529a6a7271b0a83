"""The training prompts of a run: which prompts each step draws, and each process's share.

Step k's prompts are a function of (seed, k) alone, so a resumed run (harness.checkpoint) needs
no data state: it starts the sampler at its checkpoint's step.
"""

from __future__ import annotations

import lightning as L
import torch


class PromptSampler(torch.utils.data.Sampler):
    """Infinite batch sampler: step k's prompts are a function of (seed, k) alone.

    Each epoch is a fresh permutation of the training prompts (seeded by seed and epoch), cut
    into steps of `prompts_per_step` (a last incomplete step is dropped). Under DDP each of
    `world_size` processes takes its contiguous share of every step's prompts, so groups
    (sampled per prompt) never straddle processes.
    """

    def __init__(self, num_examples: int, prompts_per_step: int, seed: int, start_step: int = 0,
                 rank: int = 0, world_size: int = 1):
        if prompts_per_step > num_examples:
            raise ValueError(f"{num_examples} training prompts are fewer than the {prompts_per_step} of one step")
        if prompts_per_step % world_size:
            raise ValueError(f"prompts per step {prompts_per_step} is not divisible by {world_size} processes")
        self.num_examples, self.prompts_per_step, self.seed = num_examples, prompts_per_step, seed
        self.start_step, self.rank, self.world_size = start_step, rank, world_size

    def global_batch(self, step: int) -> list[int]:
        per_epoch = self.num_examples // self.prompts_per_step
        epoch, position = divmod(step, per_epoch)
        order = torch.randperm(self.num_examples, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
        return order[position * self.prompts_per_step:(position + 1) * self.prompts_per_step].tolist()

    def batch(self, step: int) -> list[int]:
        share = self.prompts_per_step // self.world_size
        return self.global_batch(step)[self.rank * share:(self.rank + 1) * share]

    def __iter__(self):
        step = self.start_step
        while True:
            yield self.batch(step)
            step += 1


class PromptData(L.LightningDataModule):
    """The training prompts through `PromptSampler`, sharded by the Trainer's rank once it has
    started its processes (so the same code serves one process and DDP)."""

    def __init__(self, examples: list, prompts_per_step: int, seed: int, start_step: int = 0):
        super().__init__()
        self.examples, self.prompts_per_step, self.seed, self.start_step = examples, prompts_per_step, seed, start_step

    def train_dataloader(self):
        sampler = PromptSampler(len(self.examples), self.prompts_per_step, self.seed, self.start_step,
                                rank=self.trainer.global_rank, world_size=self.trainer.world_size)
        return torch.utils.data.DataLoader(self.examples, batch_sampler=sampler, collate_fn=list)
