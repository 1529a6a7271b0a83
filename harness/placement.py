"""Where a run computes: the accelerator and strategy checked before any work, the engine built
once the training processes exist, the work before training run once the module is on its device.

Lightning starts DDP's other processes and their group in `fit`, then calls `setup`, then moves
and casts the module (`strategy.setup`), then `on_fit_start`. So the rollout engine is built in
`setup` (vLLM joins the group; built earlier, its own world of one would become the default group
and every process would train alone), and the offline stage runs in `on_fit_start`.
"""

from __future__ import annotations

import os
from typing import Callable

import lightning as L
import torch
import torch.distributed as dist


def resolve_accelerator(accelerator: str, devices: int = 1) -> str:
    """`cpu` or `gpu` for the config's `accelerator`; an error naming the flag when a GPU is asked
    for and none (or too few) can be seen."""
    found = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if accelerator == "auto":
        return "gpu" if found else "cpu"
    if accelerator == "gpu" and found == 0:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        detail = f", CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else ""
        raise ValueError(f"--accelerator gpu: no CUDA GPU found on this machine (torch {torch.__version__}, "
                         f"cuda build {torch.version.cuda or 'none'}{detail}); use --accelerator cpu or auto")
    if accelerator == "gpu" and devices > found:
        raise ValueError(f"--devices {devices} with --accelerator gpu: only {found} CUDA GPU(s) visible")
    return accelerator


def check_strategy(strategy: str) -> None:
    """Strategies this harness runs correctly; refused before any work otherwise."""
    if strategy == "fsdp":
        raise ValueError("--strategy fsdp is not supported: the RL loop clips the full gradient norm, pushes "
                         "whole parameters into the rollout engine after each step and checkpoints whole "
                         "state dicts, none of which sees a sharded policy yet; use --strategy ddp")


def trainer_devices(run) -> int:
    """Processes (DDP) or devices of the Trainer: one without a multi-process strategy."""
    return run.devices if run.strategy != "auto" else 1


def trainer_precision(precision: str) -> dict:
    """Trainer arguments for `precision`. Under bf16-true Lightning casts every float tensor of a batch
    to bf16 and cannot copy our frozen task examples: the batch is prompts, which the module encodes
    and places itself, so its plugin leaves batches alone."""
    if precision != "bf16-true":
        return {"precision": precision}
    from lightning.pytorch.plugins.precision import HalfPrecision

    class PromptsHalfPrecision(HalfPrecision):
        def convert_input(self, data):
            return data

    return {"plugins": [PromptsHalfPrecision("bf16-true")]}


def placement_key(module) -> dict:
    """What a cached result computed by the module's weights depends on besides the weights: the
    device kind, the weights' dtype and Lightning's precision."""
    trainer = module._trainer
    dtype = next(module.policy.parameters()).dtype
    return {"device": module.device.type, "dtype": str(dtype).removeprefix("torch."),
            "precision": str(trainer.precision) if trainer is not None else "32-true"}


class ProcessSetup(L.Callback):
    """Builds the engine per process in `setup`; runs `before_training` jobs (the offline stage,
    the diagnostic's reference samples) in `on_fit_start`; checks that the processes Lightning
    launched are the ones training and end the run with equal parameters."""

    def __init__(self, build_engine: Callable, before_training: list[Callable] | None = None):
        self.build_engine = build_engine
        self.before_training = list(before_training or [])
        self.parameters_in_sync: bool | None = None

    def setup(self, trainer, module, stage):
        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        if world != trainer.world_size:
            raise RuntimeError(f"--strategy/--devices: Lightning launched {trainer.world_size} processes but the "
                               f"process group has {world}; something built its own group before `fit`")
        module.engine = self.build_engine(module, trainer.global_rank)

    def on_fit_start(self, trainer, module):
        for job in self.before_training:
            job(module)

    def on_train_end(self, trainer, module):
        self.parameters_in_sync = parameters_in_sync(module)


def parameters_in_sync(module) -> bool:
    """Whether every process holds the same policy, bit for bit (True in one process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return True
    sums = torch.stack([p.detach().double().sum() for p in module.policy.parameters()])
    parts = [torch.empty_like(sums) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, sums)
    return all(torch.equal(parts[0], part) for part in parts[1:])
