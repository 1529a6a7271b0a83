"""A run's algorithm module on its model and task, and its rollout engine: built one way for a
training run (harness.train), the benchmarks (benchmarks/common.py) and the DDP test
(tests/harness/ddp_first_step.py), so what they time or check is what a run trains.

The module is built without an engine: under DDP the engine must be built once Lightning has
started the processes (harness.placement.ProcessSetup calls :meth:`RunModule.make_engine`); a
caller without a Trainer-managed start sets `module.engine = built.make_engine()` itself.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Callable

import torch

from harness.config import RunConfig


def quiet_lightning() -> None:
    # Lightning's tips (num_workers, litlogger, ...) are noise for this CPU loop.
    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*TPU available.*")
    warnings.filterwarnings("ignore", message=".*overridden `transfer_batch_to_device`.*")  # ours: a no-op
    # Lightning 2.6 builds pytree LeafSpecs the way torch 2.13 deprecates: once per run, not ours to fix.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*", category=FutureWarning)


@dataclass
class RunModule:
    """What :func:`build_module` returns: the module and what it was built from."""

    run: RunConfig
    algo_config: object  # the run's validated AlgorithmConfig
    accelerator: str  # "cpu" or "gpu" (harness.placement.resolve_accelerator)
    task: object
    model_path: str  # the resolved `--model`: a local folder or a hub id
    tokenizer: object
    module: object  # the algorithm's RLModule, engine None until make_engine's result is set
    encode_fn: Callable  # examples -> prompt token ids
    reward_fn: Callable  # (completion texts, their examples) -> rewards

    @property
    def parameters(self) -> int:
        """The policy's parameter count (the budget's FLOPs are counted on it)."""
        return sum(p.numel() for p in self.module.policy.parameters())

    def make_engine(self, rank: int = 0):
        """The run's rollout engine on the module's weights, wherever they are now; each process
        its own engine seed (`rank`)."""
        from harness.engines import make_engine

        return make_engine(self.run.engine, self.module.policy, self.tokenizer, model_dir=self.model_path,
                           options=self.run.engine_options, seed=rank, precision=self.run.precision)


def build_module(run: RunConfig, log=print, algo_config=None, watch_heap: bool = True) -> RunModule:
    """The run's module: settings checked before any work (`validate_run`, unless the caller
    passes the `algo_config` it validated and adjusted), the CPU's allocator set before the first
    allocation, torch threads, every RNG seeded from `run.seed`, the model resolved and loaded,
    then the algorithm built on it.

    `watch_heap`: on the CPU, sample the peak heap at every forward of the policy (harness.heap;
    the module's frozen reference copy inherits the hook), as a training run reports it; the
    benchmarks' bare loop leaves it out."""
    import lightning as L

    import algorithms
    import tasks
    from harness.allocator import keep_freed_memory
    from harness.config import validate_run
    from harness.heap import process_heap_peak, watch
    from harness.models import load_policy, resolve_model
    from harness.placement import resolve_accelerator
    from harness.prompts import encode_prompts

    quiet_lightning()
    if algo_config is None:
        algo_config = validate_run(run)  # before any work: a setting that cannot run here writes nothing
    accelerator = resolve_accelerator(run.accelerator, run.devices)
    on_cpu = accelerator == "cpu"
    if on_cpu:  # glibc's heap: the CPU's memory tools only (harness.allocator, harness.heap)
        keep_freed_memory()  # before the model's first allocations
        process_heap_peak().reset()  # this run's peak, from its start (offline stage included)
    if run.threads:
        torch.set_num_threads(run.threads)
    algo_cls = algorithms.get(run.algorithm)
    task = tasks.get(run.task)
    L.seed_everything(run.seed, workers=True, verbose=False)

    model_path = resolve_model(run.model, log=log)
    tokenizer, policy = load_policy(model_path)
    if on_cpu and watch_heap:
        watch(policy)  # before the module copies it: its reference copy inherits the hook

    def encode_fn(examples):
        return encode_prompts(tokenizer, [ex.prompt for ex in examples], run.prompt_style)

    def reward_fn(texts, examples):
        return [v.score for v in task.reward_many(texts, examples)]

    module = algo_cls(policy, tokenizer, None, reward_fn, encode_fn, algo_config, seed=run.seed)
    return RunModule(run, algo_config, accelerator, task, model_path, tokenizer, module, encode_fn, reward_fn)
