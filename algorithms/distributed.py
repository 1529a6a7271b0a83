"""Several processes (Lightning DDP): one global batch, sharded by prompt.

A mixin of `RLModule`: reductions and gathers over the trainer's processes that fall back to the
identity in one process, so every algorithm computes with global denominators either way.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

import algorithms.losses as losses

_REDUCE_OPS = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}


class DistributedBatch:
    """Needs `self.trainer` (a LightningModule's) and `self.counters` (the budget counters)."""

    @property
    def distributed(self) -> bool:
        return self._trainer is not None and self.trainer.world_size > 1 and dist.is_available() and dist.is_initialized()

    def all_reduce(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """In place over all processes; a no-op in one process."""
        if self.distributed:
            dist.all_reduce(tensor, op=_REDUCE_OPS[op])
        return tensor

    def global_batch(self, tensor: torch.Tensor) -> tuple[torch.Tensor, slice]:
        """Each process's [n, ...] rows -> (the global [W * n, ...] in rank order, this process's rows)."""
        n = tensor.shape[0]
        if not self.distributed:
            return tensor, slice(0, n)
        parts = [torch.empty_like(tensor) for _ in range(self.trainer.world_size)]
        dist.all_gather(parts, tensor.contiguous())
        rank = dist.get_rank()
        return torch.cat(parts), slice(rank * n, (rank + 1) * n)

    def global_counters(self) -> dict:
        """Budget counters summed over processes; the offline stage's (the same in each process) once."""
        if not self.distributed:
            return dict(self.counters)
        keys = sorted(k for k in self.counters if not k.startswith("offline_"))
        totals = self.all_reduce(torch.tensor([float(self.counters[k]) for k in keys], dtype=torch.float64,
                                              device=self.device))
        return {**self.counters, **dict(zip(keys, totals.tolist()))}

    def masked_whiten(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`losses.masked_whiten` with the mean and variance of the global batch."""
        if not self.distributed:
            return losses.masked_whiten(values, mask)
        valid = mask.bool()
        moments = self.all_reduce(torch.stack([valid.sum().to(values.dtype), (values * valid).sum()]))
        mean = moments[1] / moments[0].clamp_min(1.0)
        centred = (values - mean).masked_fill(~valid, 0.0)
        variance = self.all_reduce((centred * centred).sum()) / (moments[0] - 1.0).clamp_min(1.0)
        return (centred * torch.rsqrt(variance + 1e-8)).masked_fill(~valid, 0.0)
