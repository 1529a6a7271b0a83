"""Lightning callbacks: telemetry and budget counters, the step/budget stop, evaluation.

Metrics go to the Lightning logger (MLflow) with step = RL step, and into `history`, which the
run's JSON file keeps, so nothing depends on the tracking server staying up.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import lightning as L
import torch

from harness.budget import Budget, budget_metrics
from harness.evaluate import evaluate
from harness.heap import process_heap_peak
from harness.records import write_json_atomic


def memory_metrics() -> dict:
    """`perf/peak_memory_gb`, the figure compared (CONTRACT.md): on the CPU the process's max RSS,
    with `perf/peak_heap_gb` beside it, the peak of live heap memory (`harness.heap`): RSS also
    counts what the allocator freed and kept. On CUDA, `GpuMemory` adds the device's figures."""
    # ru_maxrss is KiB on Linux, bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024) / 2**30
    metrics = {"perf/max_rss_gb": rss, "perf/peak_memory_gb": rss}
    heap = process_heap_peak().peak_gb()
    if heap is not None:
        metrics["perf/peak_heap_gb"] = heap
    return metrics


def device_used_gb() -> float:
    """Memory in use on this process's GPU, every process and engine included: NVML where
    nvidia-ml-py is installed, else `torch.cuda.mem_get_info`."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
        return pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2**30
    except Exception:  # not installed, or no NVML on this machine
        free, total = torch.cuda.mem_get_info()
        return (total - free) / 2**30


class GpuMemory:
    """The trainer's GPU memory per step: peak counters reset at each step's start, so a step's
    `max_memory_allocated` is its own (not the process's lifetime peak: evaluation, the offline
    stage); the run's maximum over steps and processes is `perf/peak_memory_gb`. An in-process
    vLLM's share (`perf/engine_memory_gb`, measured after its generation) is kept apart."""

    def __init__(self):
        self.run_peak_gb = 0.0

    @staticmethod
    def active(module) -> bool:
        return torch.cuda.is_available() and module.device.type == "cuda"

    def start_step(self) -> None:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()

    def metrics(self, module) -> dict:
        torch.cuda.synchronize()
        step = torch.tensor([torch.cuda.max_memory_allocated() / 2**30, torch.cuda.max_memory_reserved() / 2**30],
                            dtype=torch.float64, device=module.device)
        step = module.all_reduce(step, "max") if getattr(module, "distributed", False) else step
        allocated, reserved = step.tolist()
        self.run_peak_gb = max(self.run_peak_gb, allocated)
        metrics = {"perf/max_memory_allocated_gb": allocated, "perf/max_memory_reserved_gb": reserved,
                   "perf/peak_memory_gb": self.run_peak_gb, "perf/device_used_gb": device_used_gb()}
        engine = getattr(getattr(module, "engine", None), "awake_memory_gb", None)
        if engine is not None:
            metrics["perf/engine_memory_gb"] = engine
        return metrics


class RunRecorder:
    """Shared state of one run: the metric history and the cumulative counters."""

    def __init__(self, logger, parameters: int, offline_seconds: float = 0.0):
        self.logger = logger
        self.parameters = parameters
        self.offline_seconds = offline_seconds
        self.history: list[dict] = []
        self.eval_curve: list[dict] = []
        self.diag_curve: list[dict] = []  # the value diagnostic (harness.diagnostic), when on
        self.latest: dict = {}
        self.train_seconds = 0.0
        self.started = time.perf_counter()
        self.logger_errors = 0

    def state(self) -> dict:
        """For a checkpoint: everything a resumed run's JSON and budget need (plain values)."""
        return {"history": self.history, "eval_curve": self.eval_curve, "diag_curve": self.diag_curve,
                "latest": self.latest, "train_seconds": self.train_seconds, "offline_seconds": self.offline_seconds,
                "wall_s": time.perf_counter() - self.started}

    def load_state(self, state: dict) -> None:
        self.history, self.eval_curve, self.diag_curve = state["history"], state["eval_curve"], state["diag_curve"]
        self.latest = dict(state["latest"])
        self.train_seconds, self.offline_seconds = state["train_seconds"], state["offline_seconds"]
        self.started = time.perf_counter() - state["wall_s"]  # time/wall_s stays cumulative

    def budget(self, module) -> dict:
        critic = getattr(module, "critic_parameters", 0)
        # Summed over DDP processes (a collective: every process calls this at the same points).
        return budget_metrics(module.global_counters(), self.parameters, self.train_seconds + self.offline_seconds, critic)

    def log(self, metrics: dict, step: int) -> None:
        self.latest.update(metrics)
        self.history.append({"step": step, **metrics})
        if self.logger is None:
            return
        try:
            self.logger.log_metrics(metrics, step=step)
        except Exception as err:  # a tracking server that went away must not stop training
            self.logger_errors += 1
            if self.logger_errors == 1:
                print(f"warning: logging to the tracking server failed ({err}); metrics are kept in the run's JSON",
                      file=sys.stderr)


class TelemetryCallback(L.Callback):
    def __init__(self, recorder: RunRecorder):
        self.recorder = recorder
        self.gpu = GpuMemory()

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if self.gpu.active(module):
            self.gpu.start_step()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        rec = self.recorder
        rec.train_seconds += module.step_metrics.get("timing_s/step", 0.0)
        metrics = dict(module.step_metrics)
        metrics.update(rec.budget(module))
        metrics.update(memory_metrics())
        if self.gpu.active(module):
            metrics.update(self.gpu.metrics(module))
        metrics["time/wall_s"] = time.perf_counter() - rec.started
        rec.log(metrics, module.rl_step)

    def on_before_backward(self, trainer, module, loss):
        process_heap_peak().sample()  # activations and the loss's tensors are all live here


class StopCallback(L.Callback):
    """Stops at `max_steps` RL steps or when the budget is spent, whichever comes first."""

    def __init__(self, recorder: RunRecorder, max_steps: int, budget: Budget | None):
        self.recorder, self.max_steps, self.budget = recorder, max_steps, budget

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        spent = self.budget is not None and self.recorder.latest.get(self.budget.metric(), 0.0) >= self.budget.limit
        if module.rl_step >= self.max_steps or spent:
            trainer.should_stop = True

    def on_train_start(self, trainer, module):
        self.on_train_batch_end(trainer, module, None, None, 0)  # a resumed run may be done already


class EvalCallback(L.Callback):
    """pass@1 on the held-out set before training, every `every` steps, and at the end.

    `before_cache`: a file for the evaluation before training. The runs of a comparison that
    start from the same weights with the same evaluation seed (the algorithms of one seed) would
    all compute the same numbers; the first one writes them and the others read them (the curve
    point says `reused`). The caller keys the file on everything the result depends on.
    """

    def __init__(self, recorder: RunRecorder, task, examples, encode_fn, every: int = 0,
                 before_cache: Path | None = None, **eval_kwargs):
        self.recorder, self.task, self.examples, self.encode_fn = recorder, task, examples, encode_fn
        self.every, self.before_cache, self.eval_kwargs = every, before_cache, eval_kwargs
        self.last_step = -1

    def run(self, module, cache: Path | None = None) -> dict:
        started = time.perf_counter()
        if cache is not None and cache.exists():
            metrics, reused = json.loads(cache.read_text()), {"reused": True}
        else:
            metrics, reused = evaluate(module.engine, self.task, self.examples, self.encode_fn, **self.eval_kwargs), {}
            if cache is not None:
                write_json_atomic(cache, metrics)
        metrics["timing_s/eval"] = time.perf_counter() - started
        budget = self.recorder.budget(module)
        self.recorder.eval_curve.append({"step": module.rl_step, **metrics, **budget, **reused})
        self.recorder.log({**metrics, **budget}, module.rl_step)
        self.last_step = module.rl_step
        return metrics

    def on_train_start(self, trainer, module):
        if module.rl_step == 0 and not self.recorder.eval_curve:  # a resumed run has its schedule's points already
            self.run(module, self.before_cache)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self.every and module.rl_step % self.every == 0:
            self.run(module)

    def on_train_end(self, trainer, module):
        if not (self.recorder.eval_curve and self.recorder.eval_curve[-1]["step"] == module.rl_step):
            self.run(module)
